#include "nodeport/backends.h"

#include <gtest/gtest.h>

namespace ng::nodeport {
namespace {

conf::Config config() {
  conf::Config c;
  c.nodes = {{.name = "b", .address = 20}, {.name = "a", .address = 10}, {.name = "c", .address = 30}};
  c.services = {
      {.namespace_name = "ns", .name = "all", .vip = 100,
       .ports = {{.name = "http", .protocol = conf::Protocol::kTcp, .port = 80, .node_port = 30080},
                 {.name = "dns", .protocol = conf::Protocol::kUdp, .port = 53, .node_port = 30053}}},
      {.namespace_name = "ns", .name = "some", .vip = 101,
       .ports = {{.name = "p", .protocol = conf::Protocol::kTcp, .port = 81, .node_port = 30081}},
       .node_names = {"c", "a"}},
  };
  return c;
}

TEST(Backends, OneSetPerServicePortWithEveryNodeOnItsNodePort) {
  const auto sets = backendSets(config());
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].service, "ns/all");
  EXPECT_EQ(sets[0].port, 80);
  ASSERT_EQ(sets[0].backends.size(), 3u);
  for (const auto& b : sets[0].backends) EXPECT_EQ(b.node_port, 30080);
  EXPECT_EQ(sets[1].protocol, conf::Protocol::kUdp);
  for (const auto& b : sets[1].backends) EXPECT_EQ(b.node_port, 30053);
}

TEST(Backends, SortedByAddressWhateverTheConfigOrder) {
  const auto sets = backendSets(config());
  EXPECT_EQ(sets[0].backends[0].node, "a");
  EXPECT_EQ(sets[0].backends[1].node, "b");
  EXPECT_EQ(sets[0].backends[2].node, "c");
}

TEST(Backends, ServiceNodeSubset) {
  const auto sets = backendSets(config());
  ASSERT_EQ(sets[2].backends.size(), 2u);
  EXPECT_EQ(sets[2].backends[0].address, 10u);
  EXPECT_EQ(sets[2].backends[1].address, 30u);
}

}  // namespace
}  // namespace ng::nodeport
