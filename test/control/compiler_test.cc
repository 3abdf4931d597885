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

TEST(Compiler, TunnelModeAndOuterSources) {
  conf::Config cfg = baseConfig();
  // Default: the internal port's address alone.
  fwd::TunnelSettings t = tunnelSettings(cfg);
  EXPECT_EQ(t.source_base, conf::parseIpv4("10.200.0.1").value());
  EXPECT_EQ(t.source_count, 1u);
  EXPECT_EQ(t.icmp_rate, 100u);
  EXPECT_EQ(t.icmp_burst, 20u);
  // A /26 without its network and broadcast addresses: .65 ... .126.
  cfg.dataplane.tunnel.source = conf::Ipv4Prefix{.address = conf::parseIpv4("10.200.0.64").value(), .length = 26};
  cfg.dataplane.tunnel.icmp_rate = 7;
  t = tunnelSettings(cfg);
  EXPECT_EQ(t.source_base, conf::parseIpv4("10.200.0.65").value());
  EXPECT_EQ(t.source_count, 62u);
  EXPECT_EQ(t.icmp_rate, 7u);
  EXPECT_EQ(t.sourceFor(0), conf::parseIpv4("10.200.0.65").value());
  EXPECT_EQ(t.sourceFor(~uint32_t{0}), conf::parseIpv4("10.200.0.126").value());
  // /31 and /32: every address.
  cfg.dataplane.tunnel.source->length = 31;
  EXPECT_EQ(tunnelSettings(cfg).source_base, conf::parseIpv4("10.200.0.64").value());
  EXPECT_EQ(tunnelSettings(cfg).source_count, 2u);
  cfg.dataplane.tunnel.source->length = 32;
  EXPECT_EQ(tunnelSettings(cfg).source_count, 1u);

  // Per-service mode, default from dataplane.mode.
  cfg.dataplane.mode = conf::Mode::kTunnel;
  cfg.services[1].mode = conf::Mode::kFullNat;
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(cfg, 1);
  EXPECT_EQ(snap->tunnel.source_count, 1u);
  const fwd::ServicePort* web = snap->find(conf::parseIpv4("10.100.0.100").value(), 80, IPPROTO_TCP);
  const fwd::ServicePort* api = snap->find(conf::parseIpv4("10.100.0.101").value(), 443, IPPROTO_TCP);
  ASSERT_NE(web, nullptr);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(web->mode, fwd::ForwardingMode::kTunnel);
  EXPECT_EQ(api->mode, fwd::ForwardingMode::kFullNat);
  const auto& vips = compiler.lastStatus()->vips;
  ASSERT_EQ(vips.size(), 3u);
  EXPECT_EQ(vips[0].mode, conf::Mode::kTunnel);
  EXPECT_EQ(vips[1].mode, conf::Mode::kFullNat);
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
  more.services.back().vips = {0x0a640067u};
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
  cfg.nodes.push_back({.name = "n4", .addresses = {conf::parseIpv4("10.200.0.14").value()}});
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
  auto prefix = [](const char* text) { return conf::IpPrefix::parse(text).value(); };
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

TEST(Compiler, AnIpv4VipWhoseServiceListsOnlyIpv6RangesAdmitsNobody) {
  conf::Config cfg = baseConfig();
  cfg.services[0].source_ranges = {conf::IpPrefix::parse("2001:db8::/32").value()};
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(cfg, 1);
  auto ip = [](const char* text) { return conf::parseIpv4(text).value(); };
  const fwd::ServicePort* sp = snap->find(ip("10.100.0.100"), 80, IPPROTO_TCP);
  ASSERT_NE(sp, nullptr);
  EXPECT_FALSE(sp->source_ranges.empty());
  for (uint32_t src : {0u, 1u, ip("198.51.100.1"), 0xffffffffu}) EXPECT_FALSE(sp->allowsSource(src)) << src;
  // Adding an IPv4 range opens exactly that range.
  cfg.services[0].source_ranges.push_back(conf::IpPrefix::parse("198.51.100.0/24").value());
  snap = compiler.compile(cfg, 2);
  sp = snap->find(ip("10.100.0.100"), 80, IPPROTO_TCP);
  EXPECT_TRUE(sp->allowsSource(ip("198.51.100.1")));
  EXPECT_FALSE(sp->allowsSource(ip("198.51.101.1")));
}

TEST(Compiler, Ipv6MaglevIdentityIsFixedAndNeverAnIpv4One) {
  EXPECT_EQ(maglevId(conf::IpAddress(0x0a000001u)), 0x0a000001u) << "IPv4 tables keep their identities";
  const auto a = maglevId(conf::IpAddress::parse("fd00::1").value());
  const auto b = maglevId(conf::IpAddress::parse("fd00::2").value());
  EXPECT_NE(a, b);
  EXPECT_GE(a, uint64_t{1} << 63);
  EXPECT_GE(b, uint64_t{1} << 63);
  // Pinned (FNV-1a 64 of the 16 bytes, top bit set; computed independently): boxes of
  // any version behind ECMP must build the same IPv6 tables.
  EXPECT_EQ(a, 0xc3c95b9eb8bf5b8bull);
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

namespace ng::control {
namespace {

conf::Config dualStackConfig(std::string_view ranges = "") {
  auto cfg = conf::parseConfig(std::string(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "net_null0"; role = "external"; address = "10.100.0.1/24"; address6 = "fd00:100::1/64"; },
    { name = "int"; device = "net_null1"; role = "internal"; address = "10.200.0.1/24"; address6 = "fd00:200::1/64"; }
  );
};
nodes = (
  { name = "n1"; addresses = [ "10.200.0.11", "fd00:200::11" ]; mac = "02:00:00:00:02:11"; },
  { name = "n2"; address = "10.200.0.12"; },
  { name = "n3"; addresses = [ "fd00:200::13", "10.200.0.13" ]; }
);
services = (
  { namespace = "a"; name = "web"; vips = [ "fd00:100::100", "10.100.0.100" ]; )") +
                                   std::string(ranges) + R"(
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; } ); }
);
)", "dual.conf");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
  return *cfg;
}

fwd::Ip6 ip6(const char* text) { return toIp6(conf::IpAddress::parse(text).value()); }

TEST(Compiler, EachIpv6VipKeepsTheGenerationItAppearedIn) {
  SnapshotCompiler compiler(1009);
  const conf::Config dual = dualStackConfig();
  auto first = compiler.compile(dual, 1);
  EXPECT_EQ(first->vips6, std::vector<fwd::Ip6>{ip6("fd00:100::100")});
  EXPECT_EQ(first->vip_since6, std::vector<uint64_t>{1});
  // Generation 2 adds a second IPv6 VIP: the first keeps 1, the new one is 2.
  conf::Config more = dual;
  more.services.push_back(dual.services[0]);
  more.services.back().name = "more";
  more.services.back().vips = {conf::IpAddress::parse("fd00:100::101").value()};
  auto second = compiler.compile(more, 2);
  EXPECT_EQ(second->vips6, (std::vector<fwd::Ip6>{ip6("fd00:100::100"), ip6("fd00:100::101")}));
  EXPECT_EQ(second->vip_since6, (std::vector<uint64_t>{1, 2}));
  // Generation 3 drops it, generation 4 brings it back: new again.
  (void)compiler.compile(dual, 3);
  auto fourth = compiler.compile(more, 4);
  EXPECT_EQ(fourth->vip_since6, (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(fourth->vip_since, std::vector<uint64_t>{1}) << "the IPv4 VIP's own record is untouched";
}

TEST(Compiler, DualStackServiceGetsAnIpv4AndAnIpv6PortOverTheNodesOfEachFamily) {
  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(dualStackConfig(), 1);
  ASSERT_EQ(snap->service_ports.size(), 1u);
  ASSERT_EQ(snap->service_ports6.size(), 1u);
  const fwd::ServicePort* v4 = snap->find(conf::parseIpv4("10.100.0.100").value(), 80, IPPROTO_TCP);
  const fwd::ServicePort6* v6 = snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP);
  ASSERT_NE(v4, nullptr);
  ASSERT_NE(v6, nullptr);
  EXPECT_EQ(v4->backends.size(), 3u);
  ASSERT_EQ(v6->backends.size(), 2u) << "n2 has no IPv6 address";
  EXPECT_EQ(v6->backends[0].node_ip, ip6("fd00:200::11"));
  EXPECT_EQ(v6->backends[1].node_ip, ip6("fd00:200::13"));
  EXPECT_EQ(v6->backends[0].node_port, 30080);
  ASSERT_NE(v6->maglev, nullptr);
  EXPECT_NE(v6->maglev, v4->maglev) << "other node identities, another table";
  EXPECT_FALSE(v6->restrict_sources);
  EXPECT_TRUE(snap->isVip6(ip6("fd00:100::100")));
  EXPECT_EQ(snap->snat_addresses6, std::vector<fwd::Ip6>{ip6("fd00:200::1")}) << "the internal port's address6";
  EXPECT_EQ(snap->snat_addresses, std::vector<uint32_t>{conf::parseIpv4("10.200.0.1").value()});
  EXPECT_EQ(snap->resolve_targets6, (std::vector<fwd::Ip6>{ip6("fd00:200::11"), ip6("fd00:200::13")}));
  ASSERT_EQ(snap->static_neighbors6.size(), 1u);
  EXPECT_EQ(snap->static_neighbors6[0].ip, ip6("fd00:200::11"));
  // Stats ids: one per (VIP, node, nodePort), so the families count apart.
  std::set<uint32_t> ids;
  for (const auto& b : v4->backends) ids.insert(b.stats_id);
  for (const auto& b : v6->backends) ids.insert(b.stats_id);
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_FALSE(ids.contains(0u));
  // The status view: both VIPs (IPv4 first), the IPv6 one with the nodes' IPv6 addresses.
  const auto view = compiler.lastStatus();
  ASSERT_EQ(view->vips.size(), 2u);
  EXPECT_EQ(view->vips[0].vip.str(), "10.100.0.100");
  EXPECT_EQ(view->vips[1].vip.str(), "fd00:100::100");
  EXPECT_EQ(view->vips[1].ports[0].backends[1].address.str(), "fd00:200::13");
  EXPECT_EQ(compiler.lastStats().service_ports, 2u);

  // A recompile reuses both tables; the same IPv6 nodes give the same table on any box.
  auto again = compiler.compile(dualStackConfig(), 2);
  EXPECT_EQ(compiler.lastStats().maglev_built, 0u);
  SnapshotCompiler other(1009);
  auto elsewhere = other.compile(dualStackConfig(), 1);
  EXPECT_TRUE(*snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP)->maglev ==
              *elsewhere->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP)->maglev);
}

TEST(Compiler, SourceRangesApplyPerFamilyAndFailClosed) {
  SnapshotCompiler compiler(1009);
  // Only an IPv6 range: the IPv6 VIP admits that prefix, the IPv4 VIP nobody.
  auto snap = compiler.compile(dualStackConfig(R"(source_ranges = [ "2001:db8::/32" ];)"), 1);
  const fwd::ServicePort6* v6 = snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP);
  const fwd::ServicePort* v4 = snap->find(conf::parseIpv4("10.100.0.100").value(), 80, IPPROTO_TCP);
  ASSERT_TRUE(v6 && v4);
  EXPECT_TRUE(v6->restrict_sources);
  EXPECT_TRUE(v6->allowsSource(ip6("2001:db8::7")));
  EXPECT_FALSE(v6->allowsSource(ip6("2001:db9::7")));
  EXPECT_FALSE(v4->allowsSource(conf::parseIpv4("198.51.100.7").value()));
  // Only an IPv4 range: the IPv6 VIP admits nobody.
  snap = compiler.compile(dualStackConfig(R"(source_ranges = [ "198.51.100.0/24" ];)"), 2);
  v6 = snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP);
  EXPECT_TRUE(v6->restrict_sources);
  EXPECT_FALSE(v6->allowsSource(ip6("2001:db8::7")));
  EXPECT_FALSE(v6->allowsSource(ip6("fd00:100::2")));
  // ::/0 and /128 edges.
  snap = compiler.compile(dualStackConfig(R"(source_ranges = [ "::/0" ];)"), 3);
  EXPECT_TRUE(snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP)->allowsSource(ip6("ffff::1")));
  snap = compiler.compile(dualStackConfig(R"(source_ranges = [ "fd00:100::2/128" ];)"), 4);
  v6 = snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP);
  EXPECT_TRUE(v6->allowsSource(ip6("fd00:100::2")));
  EXPECT_FALSE(v6->allowsSource(ip6("fd00:100::3")));
}

TEST(Compiler, ToIp6KeepsTheWireOrder) {
  const fwd::Ip6 a = ip6("2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(a.hi, 0x20010db800010002ull);
  EXPECT_EQ(a.lo, 0x0003000400050006ull);
  EXPECT_TRUE(toIp6(conf::IpAddress(0x0a000001u)).isZero());
}

TEST(Compiler, DualStackTunnelModeTunnelsEachFamilyInItsOwnWithIpv6OuterSources) {
  conf::Config cfg = dualStackConfig();
  cfg.services[0].mode = conf::Mode::kTunnel;
  // Default: the internal port's address6 alone.
  fwd::TunnelSettings t = tunnelSettings(cfg);
  EXPECT_EQ(t.source6_base, ip6("fd00:200::1"));
  EXPECT_EQ(t.source6_count, 1u);
  // A /120 without its subnet-router anycast address: ::101 ... ::1ff.
  cfg.dataplane.tunnel.source6 = conf::IpPrefix::parse("fd00:200::100/120").value();
  t = tunnelSettings(cfg);
  EXPECT_EQ(t.source6_base, ip6("fd00:200::101"));
  EXPECT_EQ(t.source6_count, 255u);
  EXPECT_EQ(t.sourceFor6(0), ip6("fd00:200::101"));
  EXPECT_EQ(t.sourceFor6(~uint32_t{0}), ip6("fd00:200::1ff"));
  EXPECT_TRUE(t.isSource6(ip6("fd00:200::180")));
  EXPECT_FALSE(t.isSource6(ip6("fd00:200::100")));
  EXPECT_FALSE(t.isSource6(ip6("fd00:200::200")));
  // /127 and /128: every address.
  cfg.dataplane.tunnel.source6->length = 127;
  EXPECT_EQ(tunnelSettings(cfg).source6_base, ip6("fd00:200::100"));
  EXPECT_EQ(tunnelSettings(cfg).source6_count, 2u);
  cfg.dataplane.tunnel.source6->length = 128;
  EXPECT_EQ(tunnelSettings(cfg).source6_count, 1u);

  SnapshotCompiler compiler(1009);
  auto snap = compiler.compile(cfg, 1);
  const fwd::ServicePort* v4 = snap->find(conf::parseIpv4("10.100.0.100").value(), 80, IPPROTO_TCP);
  const fwd::ServicePort6* v6 = snap->find6(ip6("fd00:100::100"), 80, IPPROTO_TCP);
  ASSERT_NE(v4, nullptr);
  ASSERT_NE(v6, nullptr);
  EXPECT_EQ(v4->mode, fwd::ForwardingMode::kTunnel);
  EXPECT_EQ(v6->mode, fwd::ForwardingMode::kTunnel);
  ASSERT_EQ(v6->backends.size(), 2u);  // the IPv6 nodes
  const auto& vips = compiler.lastStatus()->vips;
  ASSERT_EQ(vips.size(), 2u);
  for (const auto& vip : vips) EXPECT_EQ(vip.mode, conf::Mode::kTunnel) << vip.vip.str() << ": ipMode VIP";
}


}  // namespace
}  // namespace ng::control
