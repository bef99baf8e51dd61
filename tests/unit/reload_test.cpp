// What a reload reports as changed in the main configuration.
#include "app/reload.h"

#include <gtest/gtest.h>

namespace vnet::app {
namespace {

using Keys = std::vector<std::string>;

TEST(ChangedKeysTest, NamesEveryChangedAddedAndRemovedKey) {
  EXPECT_EQ(ChangedKeys("collectors: {tap: {max_series: 4096}}\n", "collectors:\n  tap:\n    max_series: 4096\n"),
            Keys{});
  EXPECT_EQ(ChangedKeys("collectors: {tap: {max_series: 4096, sample_every: 1}, drops: {enabled: true}}\n",
                        "collectors: {tap: {max_series: 8192, sample_every: 1}, drops: {enabled: false}}\n"),
            (Keys{"collectors.tap.max_series", "collectors.drops.enabled"}));
  EXPECT_EQ(ChangedKeys("devices: {include: [vnet.*]}\n", "devices: {include: [vnet.*, tap.*]}\n"),
            Keys{"devices.include"});
  EXPECT_EQ(ChangedKeys("collectors: {tap: {}}\n", "collectors: {tap: {backlog_slots: 1024}, ovs: {timeout: 2s}}\n"),
            (Keys{"collectors.tap.backlog_slots", "collectors.ovs"}));
  EXPECT_EQ(ChangedKeys("collectors: {ovs: {timeout: 2s}}\n", "{}\n"), Keys{"collectors"});
  EXPECT_EQ(ChangedKeys("", "collectors: {}\n"), Keys{"collectors"});
}

}  // namespace
}  // namespace vnet::app
