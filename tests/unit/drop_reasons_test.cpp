#include "kernel/drop_reasons.h"

#include <gtest/gtest.h>

#include "../support/fixtures.h"

namespace vnet::kernel {
namespace {

using vnet::testing::TempDir;

const vnet::testing::EnumValues kReasons = {
    {"SKB_NOT_DROPPED_YET", 0}, {"SKB_CONSUMED", 1}, {"SKB_DROP_REASON_NOT_SPECIFIED", 2},
    {"SKB_DROP_REASON_NO_SOCKET", 3}, {"SKB_DROP_REASON_NETFILTER_DROP", 12}, {"SKB_DROP_REASON_MAX", 13},
    // 6.5+ keeps the subsystem mask in the same enum: far above every core reason.
    {"SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000}};

TEST(DropReasons, NamesComeFromTheKernelEnumWithoutPrefix) {
  TempDir dir;
  std::string kernel = (dir.path() / "vmlinux").string();
  vnet::testing::WriteKernelBtf(kernel, kReasons, true);
  DropReasons r(kernel, (dir.path() / "none").string());
  EXPECT_TRUE(r.tracepoint_has_reason());
  EXPECT_EQ(r.Name(3), "NO_SOCKET");
  EXPECT_EQ(r.Name(12), "NETFILTER_DROP");
  EXPECT_EQ(r.Name(2), "NOT_SPECIFIED");
  EXPECT_EQ(r.Name(1), "CONSUMED");
  EXPECT_EQ(r.Name(77), "UNKNOWN_77");
}

TEST(DropReasons, NumbersDifferPerKernel) {
  TempDir dir;
  std::string kernel = (dir.path() / "vmlinux").string();
  vnet::testing::WriteKernelBtf(kernel, {{"SKB_DROP_REASON_NOT_SPECIFIED", 2}, {"SKB_DROP_REASON_NETFILTER_DROP", 3}},
                                true);
  DropReasons r(kernel, dir.path().string());
  EXPECT_EQ(r.Name(3), "NETFILTER_DROP");
}

TEST(DropReasons, KernelWithoutReasonArgumentIsNotSpecified) {
  TempDir dir;
  std::string kernel = (dir.path() / "vmlinux").string();
  vnet::testing::WriteKernelBtf(kernel, {}, false);
  DropReasons r(kernel, dir.path().string());
  EXPECT_FALSE(r.tracepoint_has_reason());
  EXPECT_EQ(r.Name(0), "NOT_SPECIFIED");
}

TEST(DropReasons, SubsystemReasonsFromModuleBtf) {
  TempDir dir;
  std::string kernel = (dir.path() / "vmlinux").string();
  vnet::testing::WriteKernelBtf(kernel, kReasons, true);
  std::string mods = (dir.path() / "btf").string();
  std::filesystem::create_directories(mods);
  vnet::testing::WriteModuleBtf(mods + "/openvswitch", kernel, "ovs_drop_reason",
                                {{"__OVS_DROP_REASON", 0x30000},
                                 {"OVS_DROP_LAST_ACTION", 0x30001},
                                 {"OVS_DROP_ACTION_ERROR", 0x30002}});
  // Private small values of a subsystem enum must not shadow core reasons.
  vnet::testing::WriteModuleBtf(mods + "/mac80211", kernel, "mac80211_drop_reason",
                                {{"RX_CONTINUE", 1}, {"RX_DROP_U_MIC_FAIL", 0x20001}});
  DropReasons r(kernel, mods);
  EXPECT_EQ(r.Name(0x30001), "OVS_DROP_LAST_ACTION");
  EXPECT_EQ(r.Name(0x30002), "OVS_DROP_ACTION_ERROR");
  EXPECT_EQ(r.Name(0x20001), "RX_DROP_U_MIC_FAIL");
  EXPECT_EQ(r.Name(1), "CONSUMED");
  EXPECT_EQ(r.Name(0x30000), "UNKNOWN_196608");
}

TEST(DropReasons, ModuleLoadedAfterStartIsNamedOnFirstUnknownValue) {
  TempDir dir;
  std::string kernel = (dir.path() / "vmlinux").string();
  vnet::testing::WriteKernelBtf(kernel, kReasons, true);
  std::string mods = (dir.path() / "btf").string();
  std::filesystem::create_directories(mods);
  DropReasons r(kernel, mods);
  EXPECT_EQ(r.Name(0x30001), "UNKNOWN_196609");
  vnet::testing::WriteModuleBtf(mods + "/openvswitch", kernel, "ovs_drop_reason", {{"OVS_DROP_LAST_ACTION", 0x30001}});
  EXPECT_EQ(r.Name(0x30001), "OVS_DROP_LAST_ACTION");
}

TEST(DropReasons, UnreadableKernelBtfThrows) {
  EXPECT_THROW(DropReasons("/nonexistent/vmlinux", "/nonexistent"), std::runtime_error);
}

}  // namespace
}  // namespace vnet::kernel
