#include "kernel/kallsyms.h"

#include <gtest/gtest.h>

#include "../support/fixtures.h"

namespace vnet::kernel {
namespace {

using vnet::testing::TempDir;

const char* kSyms =
    "ffffffff81000000 T _stext\n"
    "ffffffff81100000 T __udp4_lib_rcv\n"
    "ffffffff81100800 t udp_queue_rcv_skb\n"
    "ffffffff81100900 d some_data\n"
    "ffffffff81200000 T nf_hook_slow\n"
    "ffffffffc0001000 t tun_net_xmit\t[tun]\n"
    "ffffffffc0000000 t tun_get_user\t[tun]\n";

TEST(Kallsyms, AddressResolvesToEnclosingFunction) {
  TempDir dir;
  Kallsyms k(dir.Write("kallsyms", kSyms), (dir.path() / "modules").string());
  k.Resolve({0xffffffff81100010, 0xffffffff81100950, 0xffffffff81200000, 0xffffffffc0001234, 0xffffffffc0000010});
  EXPECT_EQ(k.Name(0xffffffff81100010), "__udp4_lib_rcv");
  EXPECT_EQ(k.Name(0xffffffff81100950), "udp_queue_rcv_skb");  // data symbols are not functions
  EXPECT_EQ(k.Name(0xffffffff81200000), "nf_hook_slow");
  EXPECT_EQ(k.Name(0xffffffffc0001234), "tun_net_xmit");  // module symbols out of order
  EXPECT_EQ(k.Name(0xffffffffc0000010), "tun_get_user");
}

TEST(Kallsyms, BelowAllSymbolsOrUnresolvedIsUnknown) {
  TempDir dir;
  Kallsyms k(dir.Write("kallsyms", kSyms), (dir.path() / "modules").string());
  k.Resolve({0x1000});
  EXPECT_EQ(k.Name(0x1000), "unknown");
  EXPECT_EQ(k.Name(0xffffffff81100010), "unknown");  // never resolved
}

TEST(Kallsyms, HiddenAddressesAreUnknown) {
  TempDir dir;
  Kallsyms k(dir.Write("kallsyms", "0000000000000000 T _stext\n0000000000000000 T __udp4_lib_rcv\n"),
             (dir.path() / "modules").string());
  k.Resolve({0xffffffff81100010});
  EXPECT_EQ(k.Name(0xffffffff81100010), "unknown");
}

// Lines that are not "address type name" (a name of at most 512 bytes) are skipped, and the
// rest still resolves.
TEST(Kallsyms, MalformedLinesAreSkipped) {
  TempDir dir;
  Kallsyms k(dir.Write("kallsyms", "ffffffff81000000 T _stext\n"
                                   "zzzzzzzzzzzzzzzz T not_hex\n"
                                   "ffffffffffffffffffffffff T too_long\n"
                                   "ffffffff81100000 T\n"
                                   "ffffffff81100000\n"
                                   "ffffffff81100000Tglued\n"
                                   "\n"
                                   " ffffffff81100000 T leading_space\n"
                                   "ffffffff81100000 T " + std::string(513, 'x') + "\n"
                                   "ffffffff81200000 T nf_hook_slow\n"),
             (dir.path() / "modules").string());
  k.Resolve({0xffffffff81100010, 0xffffffff81200010});
  EXPECT_EQ(k.Name(0xffffffff81100010), "_stext");
  EXPECT_EQ(k.Name(0xffffffff81200010), "nf_hook_slow");
}

TEST(Kallsyms, ModuleLoadedLaterIsResolvedAgain) {
  TempDir dir;
  std::string syms = dir.Write("kallsyms", "ffffffff81000000 T _stext\n");
  std::string mods = dir.Write("modules", "");
  Kallsyms k(syms, mods);
  k.Resolve({0xffffffffc0001010});
  EXPECT_EQ(k.Name(0xffffffffc0001010), "_stext");
  dir.Write("kallsyms", "ffffffff81000000 T _stext\nffffffffc0001000 t ovs_dp_upcall\t[openvswitch]\n");
  k.Resolve({0xffffffffc0001010});
  EXPECT_EQ(k.Name(0xffffffffc0001010), "_stext");  // modules unchanged: cached
  dir.Write("modules", "openvswitch 200704 0 - Live 0x0000000000000000\n");
  k.Resolve({0xffffffffc0001010});
  EXPECT_EQ(k.Name(0xffffffffc0001010), "ovs_dp_upcall");
}

}  // namespace
}  // namespace vnet::kernel
