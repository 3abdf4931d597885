#include "nodeport/backends.h"

#include <gtest/gtest.h>

#include <map>

namespace ng::nodeport {
namespace {

conf::Config config() {
  conf::Config c;
  c.nodes = {{.name = "b", .addresses = {20}}, {.name = "a", .addresses = {10}}, {.name = "c", .addresses = {30}}};
  c.services = {
      {.namespace_name = "ns", .name = "all", .vips = {100u},
       .ports = {{.name = "http", .protocol = conf::Protocol::kTcp, .port = 80, .node_port = 30080},
                 {.name = "dns", .protocol = conf::Protocol::kUdp, .port = 53, .node_port = 30053}}},
      {.namespace_name = "ns", .name = "some", .vips = {101u},
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

TEST(Backends, SourceRangesAndAffinityAreCarriedToEveryPortOfTheService) {
  conf::Config c = config();
  c.services[0].source_ranges = {{.address = 0xc6336400, .length = 24}, {.address = 0, .length = 0}};
  c.services[0].session_affinity = conf::SessionAffinity::kClientIp;
  c.services[0].session_affinity_timeout = 600;
  const auto sets = backendSets(c);
  ASSERT_EQ(sets.size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(sets[i].source_ranges, c.services[0].source_ranges) << i;
    EXPECT_EQ(sets[i].session_affinity, conf::SessionAffinity::kClientIp) << i;
    EXPECT_EQ(sets[i].session_affinity_timeout, 600u) << i;
  }
  EXPECT_TRUE(sets[2].source_ranges.empty());
  EXPECT_EQ(sets[2].session_affinity, conf::SessionAffinity::kNone);
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

// Verdicts by probe URL; targets not in the map have none yet.
class MapHealth : public HealthView {
 public:
  std::map<std::string, TargetHealth> verdicts;
  std::optional<TargetHealth> lookup(const ProbeTarget& t) const override {
    auto it = verdicts.find(t.url());
    if (it == verdicts.end()) return std::nullopt;
    return it->second;
  }
};

conf::Config withNodeIps() {
  conf::Config c = config();
  c.nodes = {{.name = "a", .addresses = {0x0a00000b}}, {.name = "b", .addresses = {0x0a00000c}}};  // 10.0.0.11, .12
  c.services.resize(1);
  c.services[0].ports.resize(1);
  return c;
}

TEST(Backends, ClusterProbesKubeProxyByDefaultAndUsesNoWeight) {
  conf::Config c = withNodeIps();
  MapHealth h;
  h.verdicts["http://10.0.0.11:10256/healthz"] = {.serving = false, .weight = 1};
  h.verdicts["http://10.0.0.12:10256/healthz"] = {.serving = true, .weight = 7};
  const auto sets = backendSets(c, &h);
  ASSERT_EQ(sets[0].backends.size(), 2u);
  EXPECT_FALSE(sets[0].backends[0].serving);
  EXPECT_TRUE(sets[0].backends[1].serving);
  EXPECT_EQ(sets[0].backends[1].weight, 1u) << "kube-proxy's node-wide /healthz carries no Service weight";
  EXPECT_FALSE(sets[0].all_down);
  ASSERT_TRUE(sets[0].backends[0].probe.has_value());
  EXPECT_EQ(sets[0].backends[0].probe->url(), "http://10.0.0.11:10256/healthz");
}

TEST(Backends, ClusterProbeKinds) {
  conf::Config c = withNodeIps();
  c.health.cluster_probe = conf::ClusterProbe::kTcp;
  EXPECT_EQ(backendSets(c)[0].backends[0].probe->url(), "tcp://10.0.0.11:30080");
  c.health.cluster_probe = conf::ClusterProbe::kNone;
  EXPECT_FALSE(backendSets(c)[0].backends[0].probe.has_value());
  EXPECT_TRUE(probeTargets(c).empty());
}

TEST(Backends, LocalUsesHealthCheckNodePortAndReportedWeights) {
  conf::Config c = withNodeIps();
  c.services[0].external_traffic_policy = conf::TrafficPolicy::kLocal;
  c.services[0].health_check_node_port = 32000;
  MapHealth h;
  h.verdicts["http://10.0.0.11:32000/healthz"] = {.serving = true, .weight = 1};
  h.verdicts["http://10.0.0.12:32000/healthz"] = {.serving = true, .weight = 3};
  auto sets = backendSets(c, &h);
  EXPECT_EQ(sets[0].backends[0].weight, 1u);
  EXPECT_EQ(sets[0].backends[1].weight, 3u);
  // Weight 0 (200 with no endpoints) drains; a huge weight is capped.
  h.verdicts["http://10.0.0.11:32000/healthz"] = {.serving = true, .weight = 0};
  h.verdicts["http://10.0.0.12:32000/healthz"] = {.serving = true, .weight = 50'000};
  sets = backendSets(c, &h);
  EXPECT_FALSE(sets[0].backends[0].serving);
  EXPECT_EQ(sets[0].backends[0].weight, 0u);
  EXPECT_EQ(sets[0].backends[1].weight, kMaxWeight);
}

TEST(Backends, AllDownFailsOpenOrDropsAsConfigured) {
  conf::Config c = withNodeIps();
  MapHealth h;
  h.verdicts["http://10.0.0.11:10256/healthz"] = {.serving = false, .weight = 1};
  h.verdicts["http://10.0.0.12:10256/healthz"] = {.serving = false, .weight = 1};
  auto sets = backendSets(c, &h);
  EXPECT_TRUE(sets[0].all_down);
  for (const auto& b : sets[0].backends) EXPECT_TRUE(b.serving) << "fail-open is the default";
  c.health.all_down = conf::AllDownPolicy::kDrop;
  sets = backendSets(c, &h);
  EXPECT_TRUE(sets[0].all_down);
  for (const auto& b : sets[0].backends) EXPECT_FALSE(b.serving);
}

TEST(Backends, ACutVerdictCutsTheNodesFlowsUnlessFailOpenServesIt) {
  conf::Config c = withNodeIps();
  MapHealth h;
  h.verdicts["http://10.0.0.11:10256/healthz"] = {.serving = false, .weight = 0, .cut = true};
  h.verdicts["http://10.0.0.12:10256/healthz"] = {.serving = true, .weight = 1};
  auto sets = backendSets(c, &h);
  EXPECT_TRUE(sets[0].backends[0].cut);
  EXPECT_FALSE(sets[0].backends[1].cut);
  // Every node down and fail-open: the cut node serves again, so nothing is cut.
  h.verdicts["http://10.0.0.12:10256/healthz"] = {.serving = false, .weight = 1};
  sets = backendSets(c, &h);
  EXPECT_TRUE(sets[0].all_down);
  EXPECT_FALSE(sets[0].backends[0].cut);
}

TEST(Backends, ProbeTargetsAreSharedBetweenServices) {
  conf::Config c = config();  // 3 nodes, two Cluster services -> one kube-proxy probe per node
  EXPECT_EQ(probeTargets(c).size(), 3u);
}

}  // namespace
}  // namespace ng::nodeport
