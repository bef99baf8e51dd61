#include "net/devices.h"

#include <gtest/gtest.h>

#include "../support/fixtures.h"

namespace vnet::net {
namespace {

using vnet::testing::FakeLinks;
using namespace std::chrono_literals;

constexpr uint32_t kOther = 4026532000;

TEST(DeviceTracker, NamesInTheDevicesOwnNamespace) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{2, "eth0"}};
  links.tables[kOther] = {{2, "veth-b"}};
  links.names[kOther] = "vm1";
  DeviceTracker t(links, 60s);
  auto r = t.Resolve({{FakeLinks::kOwn, 2}, {kOther, 2}}, DeviceTracker::Clock::time_point{});
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 2}), (DeviceLabels{"eth0", ""}));
  EXPECT_EQ(r.labels.at({kOther, 2}), (DeviceLabels{"veth-b", "vm1"}));
  EXPECT_TRUE(r.changed.empty());
  EXPECT_TRUE(r.expired.empty());
}

TEST(DeviceTracker, GoneDeviceKeepsItsNameForTheGracePeriod) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  DeviceTracker::Clock::time_point t0{};
  t.Resolve({{FakeLinks::kOwn, 7}}, t0);
  links.tables[FakeLinks::kOwn].clear();
  auto r = t.Resolve({{FakeLinks::kOwn, 7}}, t0 + 10s);
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 7}).device, "vnet3");
  r = t.Resolve({{FakeLinks::kOwn, 7}}, t0 + 69s);
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 7}).device, "vnet3");
  r = t.Resolve({{FakeLinks::kOwn, 7}}, t0 + 70s);
  EXPECT_EQ(r.labels.count({FakeLinks::kOwn, 7}), 0u);
  EXPECT_EQ(r.expired, (std::vector<DeviceId>{{FakeLinks::kOwn, 7}}));
}

TEST(DeviceTracker, GoneDeviceWhoseNameIsTakenExpiresAtOnce) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  t.Resolve({{FakeLinks::kOwn, 7}}, {});
  links.tables[FakeLinks::kOwn] = {{9, "vnet3"}};  // re-created with another ifindex
  auto r = t.Resolve({{FakeLinks::kOwn, 7}, {FakeLinks::kOwn, 9}}, {});
  EXPECT_EQ(r.expired, (std::vector<DeviceId>{{FakeLinks::kOwn, 7}}));
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 9}).device, "vnet3");
}

TEST(DeviceTracker, ReusedIfindexIsAChangeWithTheOldLabels) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  t.Resolve({{FakeLinks::kOwn, 7}}, {});
  links.tables[FakeLinks::kOwn] = {{7, "vnet9"}};
  auto r = t.Resolve({{FakeLinks::kOwn, 7}}, {});
  ASSERT_EQ(r.changed.size(), 1u);
  EXPECT_EQ(r.changed[0].second.device, "vnet3");
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 7}).device, "vnet9");
  EXPECT_TRUE(t.Resolve({{FakeLinks::kOwn, 7}}, {}).changed.empty());
}

TEST(DeviceTracker, DeviceOfANamespaceThatCannotBeListedIsNamedByIfindex) {
  FakeLinks links;
  DeviceTracker t(links, 60s);
  auto r = t.Resolve({{kOther, 4}}, {});  // its namespace is gone, or not ours to enter
  EXPECT_EQ(r.labels.at({kOther, 4}), (DeviceLabels{"ifindex:4", std::to_string(kOther)}));
  EXPECT_TRUE(r.gone.empty());
}

TEST(DeviceTracker, DeviceGoneBeforeItWasNamedIsGone) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  auto r = t.Resolve({{FakeLinks::kOwn, 7}, {FakeLinks::kOwn, 8}}, {});
  EXPECT_EQ(r.gone, (std::vector<DeviceId>{{FakeLinks::kOwn, 8}}));
  EXPECT_FALSE(r.labels.count({FakeLinks::kOwn, 8}));
  EXPECT_EQ(r.labels.at({FakeLinks::kOwn, 7}).device, "vnet3");
}

TEST(DeviceTracker, ForgetStartsClean) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  t.Resolve({{FakeLinks::kOwn, 7}}, {});
  EXPECT_EQ(t.Known({FakeLinks::kOwn, 7})->device, "vnet3");
  t.Forget({FakeLinks::kOwn, 7});
  EXPECT_FALSE(t.Known({FakeLinks::kOwn, 7}));
  links.tables[FakeLinks::kOwn] = {{7, "vnet9"}};
  EXPECT_TRUE(t.Resolve({{FakeLinks::kOwn, 7}}, {}).changed.empty());
}

TEST(DeviceTracker, IdsNoLongerAskedAreForgotten) {
  FakeLinks links;
  links.tables[FakeLinks::kOwn] = {{7, "vnet3"}};
  DeviceTracker t(links, 60s);
  t.Resolve({{FakeLinks::kOwn, 7}}, {});
  t.Resolve({}, {});
  EXPECT_FALSE(t.Known({FakeLinks::kOwn, 7}));
}

}  // namespace
}  // namespace vnet::net
