#include "control/compiler.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <set>

#include "conf/config.h"
#include "control/health_glue.h"

namespace ng::control {
namespace {

conf::Config baseConfig() {
  auto cfg = conf::parseConfig(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "net_null0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "net_null1"; role = "internal"; address = "10.200.0.1/24"; }
  );
  flows = { tcp_timeout = 300; tcp_transitory_timeout = 30; udp_timeout = 60; };
};
nodes = (
  { name = "n1"; address = "10.200.0.11"; mac = "02:00:00:00:02:11"; },
  { name = "n2"; address = "10.200.0.12"; },
  { name = "n3"; address = "10.200.0.13"; }
);
services = (
  { namespace = "a"; name = "web"; vip = "10.100.0.100";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = 30053; } ); },
  { namespace = "b"; name = "api"; vip = "10.100.0.101";
    ports = ( { name = "https"; protocol = "TCP"; port = 443; node_port = 30443; } ); },
  { namespace = "c"; name = "two"; vip = "10.100.0.102"; nodes = [ "n3", "n1" ];
    ports = ( { name = "p"; protocol = "TCP"; port = 8080; node_port = 31000; } ); }
);
)", "test.conf");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
  return *cfg;
}

TEST(Compiler, CompilesServicePortsBackendsAndSettings) {
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(baseConfig(), 7);
  EXPECT_EQ(snap->generation, 7u);
  ASSERT_EQ(snap->service_ports.size(), 4u);
  const fwd::ServicePort* dns = snap->find(conf::parseIpv4("10.100.0.100").value(), 53, IPPROTO_UDP);
  ASSERT_NE(dns, nullptr);
  ASSERT_EQ(dns->backends.size(), 3u);
  EXPECT_EQ(dns->backends[0].node_port, 30053);
  EXPECT_EQ(snap->find(conf::parseIpv4("10.100.0.100").value(), 53, IPPROTO_TCP), nullptr);
  const fwd::ServicePort* two = snap->find(conf::parseIpv4("10.100.0.102").value(), 8080, IPPROTO_TCP);
  ASSERT_NE(two, nullptr);
  ASSERT_EQ(two->backends.size(), 2u);
  EXPECT_EQ(two->backends[0].node_ip, conf::parseIpv4("10.200.0.11").value()) << "sorted by address";
  EXPECT_EQ(two->backends[1].node_ip, conf::parseIpv4("10.200.0.13").value());
  EXPECT_TRUE(snap->isVip(conf::parseIpv4("10.100.0.101").value()));
  EXPECT_EQ(snap->vips.size(), 3u);
  EXPECT_EQ(snap->timeouts.tcp_established_ms, 300'000u);
  EXPECT_EQ(snap->timeouts.tcp_transitory_ms, 30'000u);
  EXPECT_EQ(snap->timeouts.udp_ms, 60'000u);
  EXPECT_EQ(snap->timeouts.tcp_half_open_ms, 10'000u) << "flows.tcp_half_open_timeout default";
  EXPECT_EQ(snap->half_open_budget_percent, 25u);
  EXPECT_EQ(snap->snat_addresses, std::vector<uint32_t>{conf::parseIpv4("10.200.0.1").value()});
  EXPECT_EQ(snap->resolve_targets.size(), 3u);
  ASSERT_EQ(snap->static_neighbors.size(), 1u);
  EXPECT_EQ(snap->static_neighbors[0].ip, conf::parseIpv4("10.200.0.11").value());
}

// health.drain_timeout_s: a node draining (503) for longer than the timeout has its
// backends' flows cut; shorter, or without a timeout, they only get no new flows.
TEST(Compiler, ANodeDrainingPastTheDrainTimeoutIsCut) {
  const conf::Config cfg = baseConfig();
  health::TargetStatus draining{.probe = probeSpecOf(nodeport::ProbeTarget{
                                    .kind = nodeport::ProbeKind::kHttp,
                                    .address = conf::parseIpv4("10.200.0.12").value(), .port = 10256, .path = "/healthz"}),
                                .state = health::HealthState::kDraining, .serving = false, .weight = 1,
                                .last_change_unix_ms = 1'000'000};
  const std::vector<health::TargetStatus> statuses{draining};
  auto cutIds = [&](uint64_t timeout_ms, int64_t now_ms) {
    SnapshotCompiler compiler(1009);
    HealthSnapshot health(statuses, timeout_ms, now_ms);
    return compiler.compile(cfg, 1, &health)->cut_stats_ids;
  };
  EXPECT_TRUE(cutIds(0, 9'000'000).empty()) << "no timeout: never cut";
  EXPECT_TRUE(cutIds(30'000, 1'029'999).empty()) << "draining for less than the timeout";
  SnapshotCompiler compiler(1009);
  HealthSnapshot health(statuses, 30'000, 1'030'000);
  auto snap = compiler.compile(cfg, 1, &health);
  // n2 is in web (2 ports) and api: three backends, three ids, all n2's.
  ASSERT_EQ(snap->cut_stats_ids.size(), 3u);
  std::set<uint32_t> n2_ids;
  for (const fwd::ServicePort& sp : snap->service_ports) {
    EXPECT_EQ(sp.servingBackend(conf::parseIpv4("10.200.0.12").value(), sp.backends.empty() ? 0 : sp.backends[0].node_port),
              nullptr) << "a draining node gets no new flows";
  }
  for (const auto& vip : compiler.lastStatus()->vips) {
    for (const auto& port : vip.ports) {
      for (const auto& b : port.backends) {
        if (b.address == conf::parseIpv4("10.200.0.12").value()) n2_ids.insert(b.stats_id);
      }
    }
  }
  EXPECT_EQ(std::set<uint32_t>(snap->cut_stats_ids.begin(), snap->cut_stats_ids.end()), n2_ids);
  for (uint32_t id : snap->cut_stats_ids) EXPECT_TRUE(snap->cutsFlowsOf(id));
}

TEST(Compiler, EachVipKeepsTheGenerationItAppearedIn) {
  SnapshotCompiler compiler(1009);
  conf::Config cfg = baseConfig();
  cfg.dataplane.garp_interval_s = 7;
  auto first = compiler.compile(cfg, 1);
  EXPECT_EQ(first->vips, (std::vector<uint32_t>{0x0a640064, 0x0a640065, 0x0a640066}));
  EXPECT_EQ(first->vip_since, (std::vector<uint64_t>{1, 1, 1}));
  EXPECT_EQ(first->garp_interval_ms, 7000u);
  // Generation 2 drops .101; generation 3 adds .103 and brings .101 back: both new in 3.
  conf::Config without = cfg;
  without.services.erase(without.services.begin() + 1);
  auto second = compiler.compile(without, 2);
  EXPECT_EQ(second->vips, (std::vector<uint32_t>{0x0a640064, 0x0a640066}));
  EXPECT_EQ(second->vip_since, (std::vector<uint64_t>{1, 1}));
  conf::Config more = cfg;
  more.services.push_back(cfg.services[0]);
  more.services.back().name = "more";
  more.services.back().vip = 0x0a640067;
  auto third = compiler.compile(more, 3);
  EXPECT_EQ(third->vips, (std::vector<uint32_t>{0x0a640064, 0x0a640065, 0x0a640066, 0x0a640067}));
  EXPECT_EQ(third->vip_since, (std::vector<uint64_t>{1, 3, 1, 3}));
}

TEST(Compiler, ServicesOverTheSameNodesShareOneMaglevTable) {
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(baseConfig(), 1);
  EXPECT_EQ(compiler.lastStats().maglev_tables, 2u) << "all-nodes set and the {n1,n3} set";
  EXPECT_EQ(compiler.lastStats().maglev_built, 2u);
  EXPECT_EQ(snap->service_ports[0].maglev.get(), snap->service_ports[2].maglev.get());
}

TEST(Compiler, UnchangedTablesAreReusedAcrossGenerations) {
  SnapshotCompiler compiler(1009);
  auto first = compiler.compile(baseConfig(), 1);
  auto second = compiler.compile(baseConfig(), 2);
  EXPECT_EQ(compiler.lastStats().maglev_built, 0u);
  EXPECT_EQ(compiler.lastStats().slots_moved, 0u);
  EXPECT_EQ(first->service_ports[0].maglev.get(), second->service_ports[0].maglev.get());
}

TEST(Compiler, RemovingANodeReportsChurnAndRebuildsOnlyWhatChanged) {
  SnapshotCompiler compiler(1009);
  (void)compiler.compile(baseConfig(), 1);
  conf::Config cfg = baseConfig();
  cfg.nodes.erase(cfg.nodes.begin() + 1);  // n2 leaves
  auto snap = compiler.compile(cfg, 2);
  // The all-nodes set becomes {n1, n3}: exactly the table service c/two already has.
  EXPECT_EQ(compiler.lastStats().maglev_built, 0u);
  EXPECT_EQ(compiler.lastStats().maglev_tables, 1u);
  // Three service ports used the all-nodes table; each moves about a third of 1009 slots.
  EXPECT_GT(compiler.lastStats().slots_moved, 3u * 250u);
  EXPECT_LT(compiler.lastStats().slots_moved, 3u * 500u);
  for (const auto& sp : snap->service_ports) {
    for (const auto& b : sp.backends) EXPECT_NE(b.node_ip, conf::parseIpv4("10.200.0.12").value());
  }
}

TEST(Compiler, ANewNodeSetBuildsOneTable) {
  SnapshotCompiler compiler(1009);
  (void)compiler.compile(baseConfig(), 1);
  conf::Config cfg = baseConfig();
  cfg.nodes.push_back({.name = "n4", .address = conf::parseIpv4("10.200.0.14").value()});
  (void)compiler.compile(cfg, 2);
  EXPECT_EQ(compiler.lastStats().maglev_built, 1u) << "only the all-nodes table changes";
  EXPECT_GT(compiler.lastStats().slots_moved, 0u);
}

TEST(Compiler, MaglevSizeGrowsPastOneHundredSlotsPerBackend) {
  EXPECT_EQ(maglevSizeFor(65537, 3), 65537u);
  EXPECT_EQ(maglevSizeFor(65537, 655), 65537u);
  const uint32_t big = maglevSizeFor(65537, 1000);
  EXPECT_GE(big, 100'000u);
  EXPECT_TRUE(lb::isPrime(big));
  EXPECT_EQ(maglevSizeFor(251, 1), 251u);
  EXPECT_EQ(maglevSizeFor(251, 3), 307u) << "smallest prime >= 300";
}

TEST(Compiler, SourceRangesAreMergedIntoEveryPortOfTheirService) {
  conf::Config cfg = baseConfig();
  auto prefix = [](const char* text) { return conf::parseIpv4Prefix(text).value(); };
  cfg.services[0].source_ranges = {prefix("192.168.1.0/24"), prefix("10.0.0.0/8"), prefix("10.1.0.0/16"),
                                   prefix("192.168.0.0/24"), prefix("203.0.113.9/32")};
  cfg.services[1].source_ranges = {prefix("0.0.0.0/0")};
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(cfg, 1);
  auto ip = [](const char* text) { return conf::parseIpv4(text).value(); };
  const std::vector<fwd::SourceRange> web = {{.first = ip("10.0.0.0"), .last = ip("10.255.255.255")},
                                             {.first = ip("192.168.0.0"), .last = ip("192.168.1.255")},
                                             {.first = ip("203.0.113.9"), .last = ip("203.0.113.9")}};
  for (uint16_t port : {80, 53}) {
    const fwd::ServicePort* sp = snap->find(ip("10.100.0.100"), port, port == 80 ? IPPROTO_TCP : IPPROTO_UDP);
    ASSERT_NE(sp, nullptr);
    EXPECT_EQ(sp->source_ranges, web) << port;
    EXPECT_TRUE(sp->allowsSource(ip("192.168.1.200")));
    EXPECT_FALSE(sp->allowsSource(ip("192.168.2.0")));
  }
  const fwd::ServicePort* api = snap->find(ip("10.100.0.101"), 443, IPPROTO_TCP);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->source_ranges, (std::vector<fwd::SourceRange>{{.first = 0, .last = 0xffffffffu}}));
  const fwd::ServicePort* two = snap->find(ip("10.100.0.102"), 8080, IPPROTO_TCP);
  ASSERT_NE(two, nullptr);
  EXPECT_TRUE(two->source_ranges.empty()) << "no ranges: every source";

  // A reload that changes only the ranges reuses the Maglev tables.
  cfg.services[0].source_ranges.clear();
  auto next = compiler.compile(cfg, 2);
  EXPECT_EQ(compiler.lastStats().maglev_built, 0u);
  EXPECT_TRUE(next->find(ip("10.100.0.100"), 80, IPPROTO_TCP)->source_ranges.empty());
}

TEST(Compiler, ClientIpAffinityBecomesAPerPortTimeoutInMilliseconds) {
  conf::Config cfg = baseConfig();
  cfg.services[0].session_affinity = conf::SessionAffinity::kClientIp;
  cfg.services[0].session_affinity_timeout = 86400;
  cfg.services[2].session_affinity = conf::SessionAffinity::kClientIp;  // default timeout
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(cfg, 1);
  auto ip = [](const char* text) { return conf::parseIpv4(text).value(); };
  EXPECT_EQ(snap->find(ip("10.100.0.100"), 80, IPPROTO_TCP)->affinity_timeout_ms, 86'400'000u);
  EXPECT_EQ(snap->find(ip("10.100.0.100"), 53, IPPROTO_UDP)->affinity_timeout_ms, 86'400'000u);
  EXPECT_EQ(snap->find(ip("10.100.0.101"), 443, IPPROTO_TCP)->affinity_timeout_ms, 0u) << "None";
  EXPECT_EQ(snap->find(ip("10.100.0.102"), 8080, IPPROTO_TCP)->affinity_timeout_ms, 10'800'000u);
  // The affinity lookup binary-searches the backends: the compiler emits them sorted.
  for (const fwd::ServicePort& sp : snap->service_ports) EXPECT_TRUE(sp.backends_sorted) << sp.port;
}

TEST(Compiler, SameConfigGivesTheSameTablesInAnotherCompiler) {
  SnapshotCompiler a(1009);
  SnapshotCompiler b(1009);
  conf::Config reversed = baseConfig();
  std::reverse(reversed.nodes.begin(), reversed.nodes.end());
  auto x = a.compile(baseConfig(), 1);
  auto y = b.compile(reversed, 1);
  ASSERT_EQ(x->service_ports.size(), y->service_ports.size());
  for (size_t i = 0; i < x->service_ports.size(); ++i) {
    EXPECT_EQ(*x->service_ports[i].maglev, *y->service_ports[i].maglev) << "ECMP peers must agree";
  }
}

}  // namespace
}  // namespace ng::control

namespace ng::control {
namespace {

// stats id of node `node_ip` on VIP:port in the compiler's last status view (0 if absent).
uint32_t statsId(const SnapshotCompiler& c, uint16_t port, uint32_t node_ip) {
  for (const VipView& v : c.lastStatus()->vips) {
    for (const PortView& p : v.ports) {
      for (const BackendView& b : p.backends) {
        if (p.port == port && b.address == node_ip) return b.stats_id;
      }
    }
  }
  return 0;
}

TEST(CompilerStatsIds, StableWhileTheBackendStaysThenReusedOldestFirst) {
  conf::Config cfg = baseConfig();
  const uint32_t n1 = conf::parseIpv4("10.200.0.11").value();
  const uint32_t n3 = conf::parseIpv4("10.200.0.13").value();
  SnapshotCompiler compiler(1009, 10);  // ids 1..9 for 11 backends: 2 unattributed
  (void)compiler.compile(cfg, 1);
  EXPECT_EQ(compiler.lastStats().backends_unattributed, 2u);
  const uint32_t http_n1 = statsId(compiler, 80, n1);
  ASSERT_NE(http_n1, 0u);
  (void)compiler.compile(cfg, 2);
  EXPECT_EQ(statsId(compiler, 80, n1), http_n1) << "same backend, same id";

  // c/two (8080, compiled last) had no ids. b/api (443, 3 backends) leaves: its ids are
  // released after that generation, and c/two's backends get them in the next one;
  // a/web keeps its own throughout.
  EXPECT_EQ(statsId(compiler, 8080, n1), 0u);
  std::set<uint32_t> api_ids;
  for (uint32_t node = n1; node <= n3; ++node) api_ids.insert(statsId(compiler, 443, node));
  cfg.services.erase(cfg.services.begin() + 1);
  (void)compiler.compile(cfg, 3);
  EXPECT_EQ(compiler.lastStats().backends_unattributed, 2u) << "released ids are free from the next generation";
  (void)compiler.compile(cfg, 4);
  EXPECT_EQ(compiler.lastStats().backends_unattributed, 0u);
  EXPECT_EQ(statsId(compiler, 80, n1), http_n1);
  std::set<uint32_t> ids;
  for (uint16_t port : {80, 53}) {
    for (uint32_t node = n1; node <= n3; ++node) ids.insert(statsId(compiler, port, node));
  }
  ids.insert(statsId(compiler, 8080, n1));
  ids.insert(statsId(compiler, 8080, n3));
  EXPECT_EQ(ids.size(), 8u) << "8 backends, 8 distinct ids";
  EXPECT_FALSE(ids.contains(0));
  EXPECT_TRUE(api_ids.contains(statsId(compiler, 8080, n1))) << "ids come back from the released ones";
  EXPECT_TRUE(api_ids.contains(statsId(compiler, 8080, n3)));
}

}  // namespace
}  // namespace ng::control
