// Tests for the config loader: the shipped configs load with the expected values,
// defaults apply, and each kind of broken config fails with the exact file, line and
// setting path plus a recognisable phrase.

#include "conf/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ng::conf {
namespace {

const std::string kSourceDir = NG_SOURCE_DIR;

uint32_t ip(std::string_view text) {
  const auto address = parseIpv4(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(0);
}

// A valid config whose line numbers the error cases rely on:
//   line 1-7  dataplane; line 6 is `dataplane` (one line, may be empty)
//   line 8    `nodes` (one line; default n1 10.200.0.11, n2 10.200.0.12)
//   line 9+   `rest`
struct Parts {
  std::string_view dataplane;
  std::string_view nodes =
      R"(nodes = ( { name = "n1"; address = "10.200.0.11"; }, { name = "n2"; address = "10.200.0.12"; } );)";
  std::string_view rest;
};

std::string build(const Parts& parts) {
  EXPECT_EQ(parts.dataplane.find('\n'), std::string_view::npos);
  EXPECT_EQ(parts.nodes.find('\n'), std::string_view::npos);
  return std::string(R"(dataplane = {
  ports = (
    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "net_ring1"; role = "internal"; address = "10.200.0.1/24"; }
  );
  )") + std::string(parts.dataplane) + "\n};\n" + std::string(parts.nodes) + "\n" +
         std::string(parts.rest);
}

std::string withBase(std::string_view rest, std::string_view dataplane = "") {
  return build({.dataplane = dataplane, .nodes = Parts{}.nodes, .rest = rest});
}

std::string withNodes(std::string_view nodes) {
  return build({.dataplane = "", .nodes = nodes, .rest = ""});
}

// A valid config whose external port (line 3) is `first_port`.
std::string withPortsText(std::string_view first_port) {
  return "dataplane = {\n  ports = (\n" + std::string(first_port) + "\n" +
         R"(    { name = "int"; device = "net_ring1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
nodes = ( { name = "n1"; address = "10.200.0.11"; } );
)";
}

// One "default/web" service: group on line 9, vip on line 10, its one port on line 11
// (`port_line` goes inside the port group), `extra` on line 12.
std::string withService(std::string_view vip, std::string_view port_line,
                        std::string_view extra = "") {
  return withBase(std::string(R"(services = ( { namespace = "default"; name = "web";
  vip = ")") + std::string(vip) + R"(";
  ports = ( { name = "http"; )" + std::string(port_line) + R"( } );
  )" + std::string(extra) + R"(
} );
)");
}

// ---------------------------------------------------------------------------------------
// Shipped configs

TEST(ConfigTest, DemoConfLoads) {
  const auto config = loadConfig(kSourceDir + "/conf/demo.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->source, kSourceDir + "/conf/demo.conf");
  const DataplaneConfig& dp = config->dataplane;
  EXPECT_EQ(dp.eal, (std::vector<std::string>{"--no-huge", "-m", "512", "--no-pci",
                                               "--no-shconf"}));
  EXPECT_EQ(dp.workers, std::vector<unsigned>{1});
  ASSERT_EQ(dp.ports.size(), 2u);
  EXPECT_EQ(dp.ports[0].name, "ext");
  EXPECT_EQ(dp.ports[0].device, "net_af_packet0,iface=ext0");
  EXPECT_EQ(dp.ports[0].role, PortRole::kExternal);
  EXPECT_EQ(dp.ports[0].address, (Ipv4Prefix{.address = ip("10.100.0.1"), .length = 24}));
  EXPECT_FALSE(dp.ports[0].gateway.has_value());
  EXPECT_EQ(dp.ports[1].role, PortRole::kInternal);
  EXPECT_EQ(dp.ports[1].mtu, 1500);
  EXPECT_EQ(dp.mode, Mode::kFullNat);
  EXPECT_EQ(dp.snat.addresses, std::vector<IpAddress>{ip("10.200.0.1")});
  EXPECT_EQ(dp.flows.capacity, 65536u);
  EXPECT_EQ(dp.flows.tcp_timeout, 900u);
  EXPECT_EQ(dp.flows.tcp_transitory_timeout, 60u);
  EXPECT_EQ(dp.flows.udp_timeout, 120u);
  EXPECT_EQ(config->api.listen, "127.0.0.1:9080");
  EXPECT_EQ(config->state_dir, "/tmp/nodegate-demo");
  ASSERT_EQ(config->nodes.size(), 3u);
  EXPECT_EQ(config->nodes[2].name, "n3");
  EXPECT_EQ(config->nodes[2].addresses, (std::vector<IpAddress>{ip("10.200.0.13")}));
  ASSERT_EQ(config->services.size(), 1u);
  const ServiceConfig& web = config->services[0];
  EXPECT_EQ(web.namespace_name, "default");
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.vips, (std::vector<IpAddress>{ip("10.100.0.100")}));
  ASSERT_EQ(web.ports.size(), 1u);
  EXPECT_EQ(web.ports[0].name, "http");
  EXPECT_EQ(web.ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(web.ports[0].port, 80);
  EXPECT_EQ(web.ports[0].node_port, 30080);
  EXPECT_EQ(web.external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_FALSE(web.mode.has_value());
  EXPECT_TRUE(web.node_names.empty());
}

TEST(ConfigTest, AnnotatedExampleLoads) {
  const auto config = loadConfig(kSourceDir + "/conf/nodegate.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const DataplaneConfig& dp = config->dataplane;
  EXPECT_EQ(dp.workers, (std::vector<unsigned>{1, 2}));
  ASSERT_NE(config->port(PortRole::kExternal), nullptr);
  EXPECT_EQ(config->port(PortRole::kExternal)->gateway, ip("192.0.2.1"));
  EXPECT_EQ(config->port(PortRole::kInternal)->name, "int");
  EXPECT_EQ(config->port(PortRole::kInternal)->mtu, 9000);
  EXPECT_EQ(config->port(PortRole::kInternal)->address,
            (Ipv4Prefix{.address = ip("10.20.0.10"), .length = 16}));
  EXPECT_EQ(dp.snat.addresses, (std::vector<IpAddress>{ip("10.20.0.10"), ip("10.20.0.11")}));
  EXPECT_TRUE(dp.exception_path.enabled);
  EXPECT_EQ(dp.garp_interval_s, 30u);
  EXPECT_EQ(config->port(PortRole::kExternal)->kernel_iface, "ng-ext");
  EXPECT_EQ(config->port(PortRole::kInternal)->kernel_iface, "ng-int") << "the default";
  EXPECT_EQ(config->api.token_file, "/etc/nodegate/api-token");
  ASSERT_EQ(config->pools.size(), 2u);
  EXPECT_EQ(config->pools[1].name, "internal-lb");
  EXPECT_EQ(config->pools[1].cidrs[1], (IpPrefix{.address = ip("10.20.201.0"), .length = 28}));
  EXPECT_FALSE(config->kubernetes.enabled);
  EXPECT_EQ(config->kubernetes.class_name, "nodegate.io/lb");
  ASSERT_EQ(config->nodes.size(), 3u);
  EXPECT_FALSE(config->nodes[0].mac.has_value());
  EXPECT_EQ(config->nodes[2].mac, (Mac{0x02, 0x00, 0x0a, 0x14, 0x01, 0x03}));
  ASSERT_EQ(config->services.size(), 2u);
  EXPECT_EQ(config->services[0].ports.size(), 2u);
  EXPECT_EQ(config->services[0].source_ranges,
            (std::vector<IpPrefix>{{.address = ip("198.51.100.0"), .length = 24},
                                   {.address = ip("203.0.113.0"), .length = 25}}));
  EXPECT_EQ(config->services[0].session_affinity, SessionAffinity::kClientIp);
  EXPECT_EQ(config->services[0].session_affinity_timeout, 3600u);
  EXPECT_TRUE(config->services[1].source_ranges.empty());
  EXPECT_EQ(config->services[1].session_affinity, SessionAffinity::kNone);
  const ServiceConfig& dns = config->services[1];
  EXPECT_EQ(dns.ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(dns.mode, Mode::kFullNat);
  EXPECT_EQ(dns.node_names, (std::vector<std::string>{"node-a", "node-b"}));
}

// ---------------------------------------------------------------------------------------
// Tunnel mode

TEST(ConfigTest, TunnelModeBoxDefaultServiceOverrideAndTunnelSettings) {
  const auto config = parseConfig(
      build({.dataplane = R"(mode = "tunnel"; tunnel = { source = "10.200.0.64/26"; icmp_rate = 50; icmp_burst = 5; };)",
             .rest = R"(services = (
  { namespace = "a"; name = "dsr"; vip = "10.100.0.100"; ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); },
  { namespace = "a"; name = "nat"; vip = "10.100.0.101"; mode = "fullnat";
    ports = ( { protocol = "TCP"; port = 80; node_port = 30081; } ); } );
)"}),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.mode, Mode::kTunnel);
  ASSERT_TRUE(config->dataplane.tunnel.source.has_value());
  EXPECT_EQ(*config->dataplane.tunnel.source, (Ipv4Prefix{.address = ip("10.200.0.64"), .length = 26}));
  EXPECT_EQ(config->dataplane.tunnel.icmp_rate, 50u);
  EXPECT_EQ(config->dataplane.tunnel.icmp_burst, 5u);
  EXPECT_FALSE(config->services[0].mode.has_value());  // the box default applies
  EXPECT_EQ(config->services[1].mode, Mode::kFullNat);
}

TEST(ConfigTest, TunnelSettingsDefaults) {
  const auto config = parseConfig(withBase(""), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_FALSE(config->dataplane.tunnel.source.has_value());
  EXPECT_EQ(config->dataplane.tunnel.icmp_rate, 100u);
  EXPECT_EQ(config->dataplane.tunnel.icmp_burst, 20u);
}

// ---------------------------------------------------------------------------------------
// Defaults and accepted spellings

TEST(ConfigTest, DefaultsApplyToAMinimalConfig) {
  const auto config = parseConfig(withBase(R"(services = ( { namespace = "a"; name = "b";
  vip = "10.100.0.100"; ports = ( { protocol = "UDP"; port = 53; node_port = 30053; } ); } );
)"),
                                  "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const Config defaults;
  const DataplaneConfig& dp = config->dataplane;
  EXPECT_EQ(config->source, "t.conf");
  EXPECT_TRUE(dp.eal.empty());
  EXPECT_EQ(dp.workers, std::vector<unsigned>{1});
  EXPECT_EQ(dp.mode, Mode::kFullNat);
  EXPECT_EQ(dp.ports[0].mtu, 1500);
  EXPECT_FALSE(dp.ports[0].gateway.has_value());
  // SNAT defaults to the internal port's address.
  EXPECT_EQ(dp.snat.addresses, std::vector<IpAddress>{ip("10.200.0.1")});
  EXPECT_EQ(dp.flows.capacity, defaults.dataplane.flows.capacity);
  EXPECT_EQ(dp.flows.capacity6, 0u) << "absent: the worker derives it (a quarter of capacity, at least 1024)";
  EXPECT_EQ(dp.flows.tcp_timeout, 900u);
  EXPECT_EQ(dp.flows.tcp_transitory_timeout, 60u);
  EXPECT_EQ(dp.flows.udp_timeout, 120u);
  EXPECT_EQ(config->api.listen, "127.0.0.1:9080");
  EXPECT_EQ(config->api.token_file, "");
  EXPECT_EQ(config->state_dir, "/var/lib/nodegate");
  EXPECT_EQ(config->health.interval_ms, 2000u);
  EXPECT_EQ(config->health.timeout_ms, 1000u);
  EXPECT_EQ(config->health.rise, 2u);
  EXPECT_EQ(config->health.fall, 3u);
  EXPECT_TRUE(config->pools.empty());
  EXPECT_FALSE(config->kubernetes.enabled);
  EXPECT_EQ(config->kubernetes.kubeconfig, "");
  EXPECT_EQ(config->kubernetes.class_name, "nodegate.io/lb");
  const ServiceConfig& service = config->services.at(0);
  EXPECT_EQ(service.ports[0].name, "");
  EXPECT_EQ(service.external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_FALSE(service.mode.has_value());
  EXPECT_TRUE(service.node_names.empty());
  EXPECT_TRUE(service.source_ranges.empty());
  EXPECT_EQ(service.session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(service.session_affinity_timeout, 10800u);
}

TEST(ConfigTest, SourceRangesAndClientIpAffinity) {
  const auto config = parseConfig(
      withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                  R"(source_ranges = [ "198.51.100.0/24", "0.0.0.0/0", "203.0.113.7/32", "10.0.0.0/8" ]; )"
                  R"(session_affinity = "ClientIP"; session_affinity_timeout = 86400;)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const ServiceConfig& web = config->services[0];
  EXPECT_EQ(web.source_ranges, (std::vector<IpPrefix>{{.address = ip("198.51.100.0"), .length = 24},
                                                       {.address = 0u, .length = 0},
                                                       {.address = ip("203.0.113.7"), .length = 32},
                                                       {.address = ip("10.0.0.0"), .length = 8}}))
      << "kept as written; the compiler merges them";
  EXPECT_EQ(web.session_affinity, SessionAffinity::kClientIp);
  EXPECT_EQ(web.session_affinity_timeout, 86400u);
}

TEST(ConfigTest, ClientIpAffinityDefaultsToKubernetesTimeoutAndEmptyRangesAllowAll) {
  const auto config = parseConfig(
      withService("10.100.0.100", R"(protocol = "UDP"; port = 53; node_port = 30053;)",
                  R"(source_ranges = [ ]; session_affinity = "ClientIP";)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_TRUE(config->services[0].source_ranges.empty());
  EXPECT_EQ(config->services[0].session_affinity, SessionAffinity::kClientIp);
  EXPECT_EQ(config->services[0].session_affinity_timeout, 10800u);
  const auto none = parseConfig(
      withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                  R"(session_affinity = "None"; source_ranges = ( "10.0.0.1/32" );)"),
      "t.conf");
  ASSERT_TRUE(none.has_value()) << none.error().message;
  EXPECT_EQ(none->services[0].session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(none->services[0].source_ranges.size(), 1u);
}

TEST(ConfigTest, EmptySnatListFallsBackToInternalAddress) {
  const auto config = parseConfig(withBase("", "snat = { addresses = [ ]; };"), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.snat.addresses, std::vector<IpAddress>{ip("10.200.0.1")});
}

TEST(ConfigTest, AcceptsInt64HexAndListSpellings) {
  const auto config = parseConfig(
      withBase(R"(health = { interval_ms = 5000L; rise = 0x3; };
)",
               "flows = { capacity = 268435456L; udp_timeout = 30; }; workers = ( 3, 2 ); mbufs = 131071;"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.flows.capacity, 268435456u);
  EXPECT_EQ(config->dataplane.mbufs, 131071u);
  EXPECT_EQ(config->dataplane.flows.udp_timeout, 30u);
  EXPECT_EQ(config->dataplane.flows.tcp_half_open_timeout, 10u) << "default";
  EXPECT_EQ(config->dataplane.flows.half_open_budget, 25u) << "default";
  EXPECT_EQ(config->dataplane.workers, (std::vector<unsigned>{3, 2}));
  EXPECT_EQ(config->health.interval_ms, 5000u);
  EXPECT_EQ(config->health.rise, 3u);
}

TEST(ConfigTest, Capacity6IsItsOwnSettingWithinItsLimits) {
  const auto config = parseConfig(withBase("", "flows = { capacity = 65536; capacity6 = 4194304; };"), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.flows.capacity, 65536u);
  EXPECT_EQ(config->dataplane.flows.capacity6, 4194304u) << "may exceed capacity: a box serving mostly IPv6";
  for (const uint32_t limit : {1024u, 268435456u}) {
    const auto at = parseConfig(withBase("", "flows = { capacity6 = " + std::to_string(limit) + "; };"), "t.conf");
    ASSERT_TRUE(at.has_value()) << at.error().message;
    EXPECT_EQ(at->dataplane.flows.capacity6, limit);
  }
}

TEST(ConfigTest, HalfOpenSettings) {
  const auto config =
      parseConfig(withBase("", "flows = { tcp_half_open_timeout = 5; half_open_budget = 10; };"), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.flows.tcp_half_open_timeout, 5u);
  EXPECT_EQ(config->dataplane.flows.half_open_budget, 10u);
}

TEST(ConfigTest, ExceptionPathAndGarpSettings) {
  auto config = parseConfig(withBase("", "exception_path = { enabled = true; rate_pps = 500; burst = 8; }; "
                                         "garp_interval_s = 0;"),
                            "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_TRUE(config->dataplane.exception_path.enabled);
  EXPECT_EQ(config->dataplane.exception_path.rate_pps, 500u);
  EXPECT_EQ(config->dataplane.exception_path.burst, 8u);
  EXPECT_EQ(config->dataplane.garp_interval_s, 0u);
  EXPECT_EQ(config->dataplane.ports[0].kernel_iface, "ng-ext") << "default: ng- + the port's name";
  EXPECT_EQ(config->dataplane.ports[1].kernel_iface, "ng-int");
  config = parseConfig(withBase(""), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_FALSE(config->dataplane.exception_path.enabled) << "off by default";
  EXPECT_EQ(config->dataplane.exception_path.rate_pps, 10'000u);
  EXPECT_EQ(config->dataplane.exception_path.burst, 512u);
  EXPECT_EQ(config->dataplane.garp_interval_s, 30u);
  config = parseConfig(withPortsText(R"(    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; kernel_iface = "eth-lb0"; },)"),
                       "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.ports[0].kernel_iface, "eth-lb0");
}

// The pass that widens >32-bit integer literals must not touch strings, comments or
// names that contain digits.
TEST(ConfigTest, IntegerWideningLeavesStringsAndCommentsAlone) {
  const auto config = parseConfig(
      withBase(R"(# 4294967297 in a comment
/* 5000000000
   spans lines */ state_dir = "/x/4294967297\"/9999999999"; // 8589934592
)",
               R"(eal = [ "--base-virtaddr=0x100000000", "-m", "4294967297" ];)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->dataplane.eal,
            (std::vector<std::string>{"--base-virtaddr=0x100000000", "-m", "4294967297"}));
  EXPECT_EQ(config->state_dir, "/x/4294967297\"/9999999999");
}

TEST(ConfigTest, ServiceSubsetAndLocalPolicy) {
  const auto config = parseConfig(
      withService("10.100.0.100", R"(protocol = "TCP"; port = 443; node_port = 30443;)",
                  R"(external_traffic_policy = "Local"; health_check_node_port = 32000; nodes = [ "n2" ];)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->services[0].external_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(config->services[0].health_check_node_port, 32000);
  EXPECT_EQ(config->services[0].node_names, std::vector<std::string>{"n2"});
}

TEST(ConfigTest, ServicesMayShareAVipOnDifferentPortsOrProtocols) {
  const auto config = parseConfig(withBase(R"(services = (
  { namespace = "a"; name = "tcp"; vip = "10.100.0.100";
    ports = ( { protocol = "TCP"; port = 53; node_port = 30053; } ); },
  { namespace = "a"; name = "udp"; vip = "10.100.0.100";
    ports = ( { protocol = "UDP"; port = 53; node_port = 30054; } ); }
);
)"),
                                  "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->services.size(), 2u);
}

// ---------------------------------------------------------------------------------------
// Broken configs: exact location, distinctive phrase.

struct BadCase {
  std::string name;
  std::string text;
  unsigned line;
  std::string path;    // empty for libconfig syntax errors
  std::string phrase;  // must appear after "t.conf:LINE: PATH: "
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BrokenConfigTest : public testing::TestWithParam<BadCase> {};

TEST_P(BrokenConfigTest, FailsWithFileLinePathAndReason) {
  const BadCase& c = GetParam();
  const auto config = parseConfig(c.text, "t.conf");
  ASSERT_FALSE(config.has_value()) << "config was accepted:\n" << c.text;
  const std::string& message = config.error().message;
  if (std::getenv("NG_PRINT_CONFIG_ERRORS") != nullptr) std::printf("%s\n", message.c_str());
  const std::string prefix =
      "t.conf:" + std::to_string(c.line) + ": " + (c.path.empty() ? "" : c.path + ": ");
  EXPECT_TRUE(message.starts_with(prefix)) << "message: " << message << "\nwanted prefix: " << prefix;
  EXPECT_NE(message.find(c.phrase, prefix.size()), std::string::npos)
      << "message: " << message << "\nwanted phrase: " << c.phrase;
}

const std::string kPortsTail =
    R"(    { name = "int"; device = "net_ring1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
)";

std::string withPorts(std::string_view first_port) {
  return "dataplane = {\n  ports = (\n" + std::string(first_port) + "\n" + kPortsTail;
}

const BadCase kBadCases[] = {
    // --- structure
    {"EmptyText", "", 1, "dataplane", "required setting is missing"},
    {"MissingDataplane", "api = { };\n", 1, "dataplane", "required setting is missing"},
    {"UnknownTopLevelKey", withBase("colour = \"blue\";\n"), 9, "colour",
     "unknown setting 'colour'"},
    {"UnknownPortKey",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24";
      speed = 100; },)"),
     4, "dataplane.ports.[0].speed", "unknown setting 'speed'"},
    {"MissingPortName",
     withPorts(R"(    { device = "d0"; role = "external"; address = "10.100.0.1/24"; },)"), 3,
     "dataplane.ports.[0].name", "required setting is missing"},
    {"MissingPorts", "dataplane = {\n  workers = [ 1 ];\n};\n", 1, "dataplane.ports",
     "required setting is missing"},
    {"MissingServiceVip", withBase(R"(services = (
  { namespace = "default"; name = "web";
    ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); }
);
)"),
     10, "services.[0].vip", "required setting is missing"},
    {"MissingNodePort", withService("10.100.0.100", R"(protocol = "TCP"; port = 80;)"), 11,
     "services.[0].ports.[0].node_port", "required setting is missing"},
    {"GroupWhereListExpected", withBase("pools = { name = \"p\"; };\n"), 9, "pools",
     "expected a list ( ... ) or an array [ ... ], got a group"},
    {"SyntaxError", withBase("health = { rise = ; };\n"), 9, "", "syntax error"},
    {"DuplicateSettingName", withBase("state_dir = \"/a\";\nstate_dir = \"/b\";\n"), 10, "",
     "duplicate setting name"},
    {"IncludeRejected", withBase("@include \"other.conf\"\n"), 9, "@include",
     "includes are not supported"},
    // --- types
    {"StringWhereIntExpected", withBase("health = { rise = \"2\"; };\n"), 9, "health.rise",
     "expected an integer, got a string"},
    {"FloatWhereIntExpected",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24";
      mtu = 1500.0; },)"),
     4, "dataplane.ports.[0].mtu", "expected an integer, got a float"},
    {"ScalarWhereListExpected", withBase("", "workers = 1;"), 6, "dataplane.workers",
     "expected a list ( ... ) or an array [ ... ], got an integer"},
    {"StringWhereBoolExpected", withBase("kubernetes = { enabled = \"yes\"; };\n"), 9,
     "kubernetes.enabled", "expected a boolean (true or false), got a string"},
    {"DrainTimeoutTooLong", withBase("health = { drain_timeout_s = 90000; };\n"), 9, "health.drain_timeout_s",
     "90000 is outside 0..86400"},
    {"KubernetesServerNotHttps",
     withBase("kubernetes = { server = \"http://10.0.0.1:6443\"; ca_file = \"/ca\"; };\n"), 9,
     "kubernetes.server", "'http://10.0.0.1:6443' is not an https:// URL"},
    {"KubernetesServerWithoutCa", withBase("kubernetes = { server = \"https://10.0.0.1:6443\"; };\n"), 9,
     "kubernetes.server", "needs ca_file: the server's certificate is always verified"},
    {"KubernetesServerAndKubeconfig",
     withBase("kubernetes = { kubeconfig = \"/k\"; server = \"https://10.0.0.1:6443\"; ca_file = \"/ca\"; };\n"), 9,
     "kubernetes.server", "set either kubeconfig or server, not both"},
    {"KubernetesTokenWithoutServer", withBase("kubernetes = { token_file = \"/t\"; };\n"), 9,
     "kubernetes.token_file", "needs server"},
    {"KubernetesNodeAddress", withBase("kubernetes = { node_address = \"Hostname\"; };\n"), 9,
     "kubernetes.node_address", "InternalIP"},
    {"IntWhereStringExpected", withBase("state_dir = 5;\n"), 9, "state_dir",
     "expected a string, got an integer"},
    {"EmptyStateDir", withBase("state_dir = \"\";\n"), 9, "state_dir", "must not be empty"},
    // --- addresses
    {"BadNodeAddress",
     withNodes(R"(nodes = ( { name = "n1"; address = "10.200.0.11"; }, { name = "n2"; address = "10.200.0.256"; } );)"),
     8, "nodes.[1].address", "'10.200.0.256' is not an IPv4 address"},
    {"BadPortPrefix",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/33"; },)"),
     3, "dataplane.ports.[0].address", "'10.100.0.1/33' is not an IPv4 prefix"},
    {"PrefixWithoutLength",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1"; },)"),
     3, "dataplane.ports.[0].address", "'10.100.0.1' is not an IPv4 prefix"},
    {"BadMac", withNodes(R"(nodes = ( { name = "n3"; address = "10.200.0.13"; mac = "aa:bb"; } );)"),
     8, "nodes.[0].mac", "'aa:bb' is not a MAC address"},
    {"MulticastVip", withService("224.0.0.5", R"(protocol = "TCP"; port = 80; node_port = 30080;)"),
     10, "services.[0].vip", "not a unicast host address"},
    {"GatewayOutsideSubnet",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24";
      gateway = "10.101.0.1"; },)"),
     4, "dataplane.ports.[0].gateway", "not inside the port's subnet 10.100.0.0/24"},
    {"PoolHostBits", withBase("pools = ( { name = \"p\"; cidrs = [ \"10.100.0.101/30\" ]; } );\n"),
     9, "pools.[0].cidrs.[0]", "has host bits set (did you mean 10.100.0.100/30?)"},
    {"BadSnatAddress", withBase("", "snat = { addresses = [ \"10.200.0.1\", \"10.200.0\" ]; };"),
     6, "dataplane.snat.addresses.[1]", "'10.200.0' is not an IPv4 address"},
    {"DuplicateSnatAddress",
     withBase("", "snat = { addresses = [ \"10.200.0.5\", \"10.200.0.5\" ]; };"), 6,
     "dataplane.snat.addresses.[1]", "10.200.0.5 is listed twice"},
    {"VipIsPortAddress", withService("10.100.0.1", R"(protocol = "TCP"; port = 80; node_port = 30080;)"),
     10, "services.[0].vip", "VIP 10.100.0.1 is the address of port 'ext'"},
    {"VipIsSnatAddress",
     build({.dataplane = R"(snat = { addresses = [ "10.200.0.9" ]; };)",
            .nodes = Parts{}.nodes,
            .rest = R"(services = ( { namespace = "default"; name = "web";
  vip = "10.200.0.9";
  ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); } );
)"}),
     10, "services.[0].vip", "VIP 10.200.0.9 is a SNAT address"},
    {"VipIsNodeAddress",
     withService("10.200.0.12", R"(protocol = "TCP"; port = 80; node_port = 30080;)"), 10,
     "services.[0].vip", "VIP 10.200.0.12 is the address of node 'n2'"},
    // --- ranges
    {"NodePortTooLarge",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 70000;)"), 11,
     "services.[0].ports.[0].node_port", "70000 is outside 1..65535"},
    {"PortZero", withService("10.100.0.100", R"(protocol = "TCP"; port = 0; node_port = 30080;)"),
     11, "services.[0].ports.[0].port", "0 is outside 1..65535"},
    {"NegativePort",
     withService("10.100.0.100", R"(protocol = "TCP"; port = -80; node_port = 30080;)"), 11,
     "services.[0].ports.[0].port", "-80 is outside 1..65535"},
    {"MtuTooLarge",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24";
      mtu = 9001; },)"),
     4, "dataplane.ports.[0].mtu", "9001 is outside 68..9000"},
    {"MtuTooSmall",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; mtu = 67; },)"),
     3, "dataplane.ports.[0].mtu", "67 is outside 68..9000"},
    {"OverlappingPortSubnets",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "external"; address = "10.200.0.0/16"; },)"), 4,
     "dataplane.ports.[1].address",
     "10.200.0.1/24 overlaps port 'ext' (10.200.0.0/16); the external and internal segments must be different subnets"},
    {"MbufsTooMany", withBase("", "mbufs = 16777217;"), 6, "dataplane.mbufs",
     "16777217 is outside 0..16777216"},
    {"IdleSleepTooLong", withBase("", "idle_sleep_us = 10001;"), 6, "dataplane.idle_sleep_us",
     "10001 is outside 0..10000"},
    {"CapacityZero", withBase("", "flows = { capacity = 0; };"), 6, "dataplane.flows.capacity",
     "0 is outside 1..268435456"},
    {"CapacityTooLarge", withBase("", "flows = { capacity = 268435457; };"), 6,
     "dataplane.flows.capacity", "268435457 is outside 1..268435456"},
    // Without the 'L' widening libconfig 1.5 would read this as 1 and accept it.
    {"CapacityWrapsIn32Bits", withBase("", "flows = { capacity = 4294967297; };"), 6,
     "dataplane.flows.capacity", "4294967297 is outside 1..268435456"},
    {"Capacity6BelowTheDerivedFloor", withBase("", "flows = { capacity6 = 1023; };"), 6,
     "dataplane.flows.capacity6", "1023 is outside 1024..268435456"},
    {"Capacity6Zero", withBase("", "flows = { capacity6 = 0; };"), 6, "dataplane.flows.capacity6",
     "0 is outside 1024..268435456"},
    {"Capacity6TooLarge", withBase("", "flows = { capacity6 = 268435457; };"), 6,
     "dataplane.flows.capacity6", "268435457 is outside 1024..268435456"},
    {"Capacity6WrapsIn32Bits", withBase("", "flows = { capacity6 = 4294968320; };"), 6,
     "dataplane.flows.capacity6", "4294968320 is outside 1024..268435456"},
    {"Capacity6Float", withBase("", "flows = { capacity6 = 65536.0; };"), 6, "dataplane.flows.capacity6",
     "expected an integer, got a float"},
    {"Capacity6String", withBase("", "flows = { capacity6 = \"64k\"; };"), 6, "dataplane.flows.capacity6",
     "expected an integer, got a string"},
    {"Capacity6Misspelt", withBase("", "flows = { capacity_6 = 65536; };"), 6, "dataplane.flows.capacity_6",
     "unknown setting 'capacity_6'"},
    {"NodePortWrapsIn32Bits",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 4295997376;)"), 11,
     "services.[0].ports.[0].node_port", "4295997376 is outside 1..65535"},
    {"IntegerBeyond64Bits", withBase("", "flows = { udp_timeout = 99999999999999999999; };"), 6,
     "dataplane.flows.udp_timeout", "integer is too large"},
    {"TcpTimeoutZero", withBase("", "flows = { tcp_timeout = 0; };"), 6,
     "dataplane.flows.tcp_timeout", "0 is outside 1..4294967295"},
    {"TransitoryTimeoutZero", withBase("", "flows = { tcp_transitory_timeout = 0; };"), 6,
     "dataplane.flows.tcp_transitory_timeout", "0 is outside 1.."},
    {"HalfOpenTimeoutTooLong", withBase("", "flows = { tcp_half_open_timeout = 3601; };"), 6,
     "dataplane.flows.tcp_half_open_timeout", "3601 is outside 1..3600"},
    {"HalfOpenBudgetZero", withBase("", "flows = { half_open_budget = 0; };"), 6,
     "dataplane.flows.half_open_budget", "0 is outside 1..100"},
    {"HalfOpenBudgetAboveAll", withBase("", "flows = { half_open_budget = 101; };"), 6,
     "dataplane.flows.half_open_budget", "101 is outside 1..100"},
    {"HealthIntervalZero", withBase("health = { interval_ms = 0; };\n"), 9,
     "health.interval_ms", "0 is outside 100..3600000"},
    {"HealthTimeoutNotBelowInterval", withBase("health = { interval_ms = 1000; timeout_ms = 1000; };\n"), 9,
     "health.timeout_ms", "timeout_ms 1000 must be less than interval_ms (1000)"},
    {"HealthIntervalBelowDefaultTimeout", withBase("health = { interval_ms = 500; };\n"), 9,
     "health.interval_ms", "timeout_ms 1000 must be less than interval_ms (500)"},
    {"HealthBadClusterProbe", withBase("health = { cluster_probe = \"icmp\"; };\n"), 9,
     "health.cluster_probe", "'icmp' is not one of kube-proxy, tcp, none"},
    {"HealthBadAllDown", withBase("health = { all_down = \"panic\"; };\n"), 9,
     "health.all_down", "'panic' is not one of fail-open, drop"},
    {"HealthBadSource", withBase("health = { source_address = \"10.0.0.300\"; };\n"), 9,
     "health.source_address", "'10.0.0.300' is not an IPv4 address"},
    {"ApiOpenWithoutToken", withBase("api = { listen = \"0.0.0.0:9080\"; };\n"), 9,
     "api.listen", "'0.0.0.0:9080' is not a loopback address; set api.token_file"},
    {"ApiTlsCertWithoutKey", withBase("api = { tls_cert = \"/etc/ng/cert.pem\"; };\n"), 9,
     "api.tls_cert", "tls_cert and tls_key go together"},
    {"LocalWithoutHealthCheckNodePort",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(external_traffic_policy = "Local";)"),
     12, "services.[0].external_traffic_policy", "Local needs health_check_node_port"},
    {"HealthFallZero", withBase("health = {\n  rise = 1;\n  fall = 0;\n};\n"), 11, "health.fall",
     "0 is outside 1.."},
    // --- roles and ports
    {"BadRole",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "ingress"; address = "10.100.0.1/24"; },)"),
     3, "dataplane.ports.[0].role", "'ingress' is not one of external, internal"},
    {"TwoInternalPorts",
     withPorts(R"(    { name = "ext"; device = "d0"; role = "internal"; address = "10.100.0.1/24"; },)"),
     4, "dataplane.ports.[1].role", "a second internal port (dataplane.ports.[0] is one already)"},
    {"NoInternalPort", R"(dataplane = {
  ports = (
    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; }
  );
};
)",
     2, "dataplane.ports", "no internal port"},
    {"DuplicatePortName",
     withPorts(R"(    { name = "int"; device = "d0"; role = "external"; address = "10.100.0.1/24"; },)"),
     4, "dataplane.ports.[1].name", "port name 'int' is already used by dataplane.ports.[0]"},
    // --- mode and protocol
    {"TunnelSourceHostBits", withBase("", "tunnel = { source = \"10.200.0.65/26\"; };"), 6, "dataplane.tunnel.source",
     "'10.200.0.65/26' has host bits set (did you mean 10.200.0.64/26?)"},
    {"TunnelSourceTooWide", withBase("", "tunnel = { source = \"10.0.0.0/8\"; };"), 6, "dataplane.tunnel.source",
     "'10.0.0.0/8' is wider than /16"},
    {"TunnelSourceHoldsThePortAddress", withBase("", "tunnel = { source = \"10.200.0.0/24\"; };"), 6,
     "dataplane.tunnel.source", "contains 10.200.0.1, which is the address of port 'int'"},
    {"TunnelSourceNotAPrefix", withBase("", "tunnel = { source = \"10.200.0.64\"; };"), 6, "dataplane.tunnel.source",
     "'10.200.0.64' is not an IPv4 prefix"},
    {"TunnelSourceMulticast", withBase("", "tunnel = { source = \"239.1.0.0/24\"; };"), 6, "dataplane.tunnel.source",
     "is not unicast"},
    {"TunnelIcmpBurstZero", withBase("", "tunnel = { icmp_burst = 0; };"), 6, "dataplane.tunnel.icmp_burst",
     "0 is outside 1..100000"},
    {"TunnelUnknownKey", withBase("", "tunnel = { sources = \"10.200.0.64/26\"; };"), 6, "dataplane.tunnel.sources",
     "unknown setting 'sources'"},
    {"UnknownMode", withBase("", "mode = \"dsr\";"), 6, "dataplane.mode",
     "'dsr' is not one of fullnat, tunnel"},
    {"ServiceUnknownMode",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(mode = "dsr";)"),
     12, "services.[0].mode", "'dsr' is not one of fullnat, tunnel"},
    {"NodeInTheTunnelSources",
     build({.dataplane = R"(snat = { addresses = [ "10.200.0.2" ]; }; tunnel = { source = "10.200.0.8/29"; };)",
            .nodes = R"(nodes = ( { name = "n1"; address = "10.200.0.11"; } );)"}),
     8, "nodes.[0].address", "node address 10.200.0.11 is inside dataplane.tunnel.source 10.200.0.8/29"},
    {"Sctp", withService("10.100.0.100", R"(protocol = "SCTP"; port = 80; node_port = 30080;)"),
     11, "services.[0].ports.[0].protocol", "protocol 'SCTP' is not supported; use TCP or UDP"},
    {"LowercaseProtocol",
     withService("10.100.0.100", R"(protocol = "tcp"; port = 80; node_port = 30080;)"), 11,
     "services.[0].ports.[0].protocol", "protocol 'tcp' is not supported"},
    // --- source ranges and session affinity (line 12 holds the setting)
    {"SourceRangeHostBits",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "10.0.0.0/8", "198.51.100.1/24" ];)"),
     12, "services.[0].source_ranges.[1]",
     "'198.51.100.1/24' has host bits set (did you mean 198.51.100.0/24?)"},
    {"SourceRangeWithoutLength",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "198.51.100.7" ];)"),
     12, "services.[0].source_ranges.[0]", "'198.51.100.7' is not an IP prefix"},
    {"SourceRangeLengthTooLong",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "198.51.100.0/33" ];)"),
     12, "services.[0].source_ranges.[0]", "'198.51.100.0/33' is not an IP prefix"},
    {"SourceRangeIpv6LengthTooLong",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "2001:db8::/129" ];)"),
     12, "services.[0].source_ranges.[0]", "'2001:db8::/129' is not an IP prefix"},
    {"SourceRangeIpv6HostBits",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "198.51.100.0/24", "2001:db8::1/32" ];)"),
     12, "services.[0].source_ranges.[1]", "'2001:db8::1/32' has host bits set (did you mean 2001:db8::/32?)"},
    {"SourceRangeListedTwice",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ "198.51.100.0/24", "10.0.0.0/8", "198.51.100.0/24" ];)"),
     12, "services.[0].source_ranges.[2]", "source range 198.51.100.0/24 is listed twice"},
    {"SourceRangesNotAList",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = "198.51.100.0/24";)"),
     12, "services.[0].source_ranges", "expected a list ( ... ) or an array [ ... ], got a string"},
    {"SourceRangeNotAString",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(source_ranges = [ 24 ];)"),
     12, "services.[0].source_ranges.[0]", "expected a string, got an integer"},
    {"BadSessionAffinity",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(session_affinity = "clientip";)"),
     12, "services.[0].session_affinity", "'clientip' is not one of None, ClientIP"},
    {"SessionAffinityTimeoutZero",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(session_affinity = "ClientIP"; session_affinity_timeout = 0;)"),
     12, "services.[0].session_affinity_timeout", "0 is outside 1..86400"},
    {"SessionAffinityTimeoutTooLong",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(session_affinity = "ClientIP"; session_affinity_timeout = 86401;)"),
     12, "services.[0].session_affinity_timeout", "86401 is outside 1..86400"},
    {"SessionAffinityTimeoutWithoutClientIp",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(session_affinity_timeout = 600;)"),
     12, "services.[0].session_affinity_timeout",
     "applies only with session_affinity = \"ClientIP\" (session_affinity is \"None\")"},
    {"SessionAffinityTimeoutWithNone",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 "session_affinity = \"None\";\n  session_affinity_timeout = 600;"),
     13, "services.[0].session_affinity_timeout",
     "applies only with session_affinity = \"ClientIP\" (session_affinity is \"None\")"},
    {"BadTrafficPolicy",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(external_traffic_policy = "local";)"),
     12, "services.[0].external_traffic_policy", "'local' is not one of Cluster, Local"},
    // --- duplicates and references
    {"DuplicateVipPortProtocol", withBase(R"(services = (
  { namespace = "a"; name = "one"; vip = "10.100.0.100";
    ports = ( { protocol = "UDP"; port = 53; node_port = 30053; } ); },
  { namespace = "a"; name = "two"; vip = "10.100.0.100";
    ports = ( { protocol = "TCP"; port = 53; node_port = 30054; },
              { protocol = "UDP"; port = 53; node_port = 30055; } ); }
);
)"),
     14, "services.[1].ports.[1]",
     "10.100.0.100:53/UDP is already used by services.[0].ports.[0] (a/one)"},
    {"DuplicateServiceName", withBase(R"(services = (
  { namespace = "a"; name = "one"; vip = "10.100.0.100";
    ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); },
  { namespace = "a"; name = "one"; vip = "10.100.0.101";
    ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); }
);
)"),
     12, "services.[1].name", "service a/one is already defined at services.[0]"},
    {"DuplicateServicePortName",
     withBase(R"(services = ( { namespace = "a"; name = "one"; vip = "10.100.0.100";
    ports = ( { name = "p"; protocol = "TCP"; port = 80; node_port = 30080; },
              { name = "p"; protocol = "TCP"; port = 81; node_port = 30081; } ); } );
)"),
     11, "services.[0].ports.[1].name", "port name 'p' is used twice in this service"},
    {"ServiceWithoutPorts",
     withBase("services = ( { namespace = \"a\"; name = \"b\"; vip = \"10.100.0.100\"; ports = ( ); } );\n"),
     9, "services.[0].ports", "at least one port is required"},
    {"DuplicateNodeName",
     withNodes(R"(nodes = ( { name = "n1"; address = "10.200.0.11"; }, { name = "n1"; address = "10.200.0.12"; } );)"),
     8, "nodes.[1].name", "node name 'n1' is already used by nodes.[0]"},
    {"DuplicateNodeAddress",
     withNodes(R"(nodes = ( { name = "n1"; address = "10.200.0.11"; }, { name = "n2"; address = "10.200.0.11"; } );)"),
     8, "nodes.[1].address", "node address 10.200.0.11 is already used by nodes.[0] 'n1'"},
    {"NodeAddressIsBoxAddress", withNodes(R"(nodes = ( { name = "n1"; address = "10.200.0.1"; } );)"),
     8, "nodes.[0].address", "node address 10.200.0.1 is the address of port 'int'"},
    {"UnknownServiceNode",
     withService("10.100.0.100", R"(protocol = "TCP"; port = 80; node_port = 30080;)",
                 R"(nodes = [ "n1", "n9" ];)"),
     12, "services.[0].nodes.[1]", "unknown node 'n9'"},
    {"DuplicatePoolName",
     withBase("pools = ( { name = \"p\"; cidrs = [ \"10.1.0.0/24\" ]; },\n"
              "          { name = \"p\"; cidrs = [ \"10.2.0.0/24\" ]; } );\n"),
     10, "pools.[1].name", "pool name 'p' is already used by pools.[0]"},
    {"PoolOfMulticast", withBase("pools = ( { name = \"p\"; cidrs = [ \"10.1.0.0/24\", \"ff00::/8\" ]; } );\n"), 9,
     "pools.[0].cidrs.[1]", "'ff00::/8' does not start with a unicast host address"},
    {"PoolOfEverything", withBase("pools = ( { name = \"p\"; cidrs = [ \"0.0.0.0/0\" ]; } );\n"), 9,
     "pools.[0].cidrs.[0]", "'0.0.0.0/0' does not start with a unicast host address"},
    {"PoolWithoutCidrs", withBase("pools = ( { name = \"p\"; cidrs = [ ]; } );\n"), 9,
     "pools.[0].cidrs", "at least one CIDR is required"},
    // --- workers
    {"NoWorkers", withBase("", "workers = [ ];"), 6, "dataplane.workers",
     "at least one worker lcore is required"},
    {"WorkerZero", withBase("", "workers = [ 1, 0 ];"), 6, "dataplane.workers.[1]",
     "lcore 0 is the main (control) lcore"},
    {"WorkerTooLarge", withBase("", "workers = [ 128 ];"), 6, "dataplane.workers.[0]",
     "128 is outside 1..127"},
    {"DuplicateWorker", withBase("", "workers = [ 2, 3, 2 ];"), 6, "dataplane.workers.[2]",
     "lcore 2 is listed twice"},
    {"TooManyWorkers",
     withBase("",
              [] {
                std::string list = "workers = [ 1";
                for (int i = 2; i <= 65; ++i) list += ", " + std::to_string(i);
                return list + " ];";
              }()),
     6, "dataplane.workers", "65 workers; at most 64"},
    // --- exception path
    {"ExceptionPathUnknownKey", withBase("", "exception_path = { enabled = true; queue = 3; };"), 6,
     "dataplane.exception_path.queue", "unknown setting 'queue'"},
    {"ExceptionPathNotBoolean", withBase("", "exception_path = { enabled = 1; };"), 6,
     "dataplane.exception_path.enabled", "expected a boolean"},
    {"ExceptionRateZero", withBase("", "exception_path = { enabled = true; rate_pps = 0; };"), 6,
     "dataplane.exception_path.rate_pps", "0 is outside 1..1000000"},
    {"ExceptionBurstTooLarge", withBase("", "exception_path = { burst = 70000; };"), 6,
     "dataplane.exception_path.burst", "70000 is outside 1..65536"},
    {"GarpIntervalTooLarge", withBase("", "garp_interval_s = 3601;"), 6, "dataplane.garp_interval_s",
     "3601 is outside 0..3600"},
    {"KernelIfaceTooLong",
     withPorts(R"(    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; kernel_iface = "a-very-long-name0"; },)"),
     3, "dataplane.ports.[0].kernel_iface", "'a-very-long-name0' is not a Linux interface name"},
    {"KernelIfaceSlash",
     withPorts(R"(    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; kernel_iface = "ng/ext"; },)"),
     3, "dataplane.ports.[0].kernel_iface", "is not a Linux interface name"},
    {"KernelIfaceTwice",
     withPorts(R"(    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; kernel_iface = "ng-int"; },)"),
     4, "dataplane.ports.[1]", "kernel interface 'ng-int' is already used by dataplane.ports.[0]"},
    // --- api
    {"ListenWithoutPort", withBase("api = { listen = \"localhost\"; };\n"), 9, "api.listen",
     "'localhost' is not host:port"},
    {"ListenPortOutOfRange", withBase("api = { listen = \"127.0.0.1:70000\"; };\n"), 9,
     "api.listen", "port '70000' in '127.0.0.1:70000' is not a number in 1..65535"},
    {"ListenBadIpv4", withBase("api = { listen = \"127.0.0.300:9080\"; };\n"), 9, "api.listen",
     "is not host:port"},
};

INSTANTIATE_TEST_SUITE_P(Table, BrokenConfigTest, testing::ValuesIn(kBadCases),
                         [](const testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------
// The broken files that `nodegate --check-config` is also run on.

struct BadFile {
  std::string file;
  unsigned line;
  std::string phrase;
};

class BrokenFileTest : public testing::TestWithParam<BadFile> {};

TEST_P(BrokenFileTest, NamesFileAndLine) {
  const BadFile& c = GetParam();
  const std::string path = kSourceDir + "/test/conf/bad/" + c.file;
  const auto config = loadConfig(path);
  ASSERT_FALSE(config.has_value()) << path << " was accepted";
  const std::string& message = config.error().message;
  EXPECT_TRUE(message.starts_with(path + ":" + std::to_string(c.line) + ": ")) << message;
  EXPECT_NE(message.find(c.phrase), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Files, BrokenFileTest,
    testing::Values(
        BadFile{"bad_ip.conf", 12, "services.[0].vip: '10.100.0.300' is not an IPv4 address"},
        BadFile{"port_range.conf", 14,
                "services.[0].ports.[0].node_port: 70000 is outside 1..65535"},
        BadFile{"duplicate_vip.conf", 15,
                "services.[1].ports.[0]: 10.100.0.100:80/TCP is already used by "
                "services.[0].ports.[0] (default/web)"},
        BadFile{"unknown_key.conf", 12, "health.intervall_ms: unknown setting 'intervall_ms'"},
        BadFile{"missing_key.conf", 6, "dataplane.ports.[1].address: required setting is missing"},
        BadFile{"tunnel_source.conf", 8, "dataplane.tunnel.source: '10.200.0.0/25' contains 10.200.0.1"},
        BadFile{"syntax_error.conf", 5, "syntax error"},
        BadFile{"wrapped_integer.conf", 9,
                "dataplane.flows.capacity: 4294967297 is outside 1..268435456"},
        BadFile{"flow_capacity6.conf", 9,
                "dataplane.flows.capacity6: 1023 is outside 1024..268435456"},
        BadFile{"ipv6_vip_without_snat.conf", 10,
                "services.[0].vips: VIP fd00:100::100 needs an IPv6 SNAT source for full-NAT"},
        BadFile{"source_range_host_bits.conf", 12,
                "services.[0].source_ranges.[0]: '198.51.100.7/24' has host bits set (did you mean "
                "198.51.100.0/24?)"}),
    [](const testing::TestParamInfo<BadFile>& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      std::erase(name, '_');
      return name;
    });

TEST(ConfigTest, MissingFileNamesThePath) {
  const auto config = loadConfig(kSourceDir + "/test/conf/bad/no_such_file.conf");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message,
            kSourceDir + "/test/conf/bad/no_such_file.conf: cannot open: No such file or directory");
}

// ---------------------------------------------------------------------------------------
// Helpers

// ---------------------------------------------------------------------------------------
// Dual stack: IPv6 port addresses, nodes, VIPs, SNAT sources and source ranges.

// Lines: 1 dataplane, 3 ext port, 4 int port, 6 `snat` line (may be empty), 8 nodes,
// 9 services group, 10 `vips`/`vip` line, 11 ports, 12 `extra`.
std::string dualStack(std::string_view int6, std::string_view snat, std::string_view nodes, std::string_view vip_line,
                      std::string_view extra = "") {
  return std::string(R"(dataplane = {
  ports = (
    { name = "ext"; device = "net_ring0"; role = "external"; address = "10.100.0.1/24"; address6 = "fd00:100::1/64"; gateway6 = "fe80::1"; },
    { name = "int"; device = "net_ring1"; role = "internal"; address = "10.200.0.1/24"; )") +
         std::string(int6) + R"( }
  );
  )" + std::string(snat) + R"(
};
)" + std::string(nodes) + R"(
services = ( { namespace = "default"; name = "web";
  )" + std::string(vip_line) + R"(
  ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } );
  )" + std::string(extra) + R"(
} );
)";
}

constexpr std::string_view kInt6 = R"(address6 = "fd00:200::1/64";)";
constexpr std::string_view kDualNodes =
    R"(nodes = ( { name = "n1"; addresses = [ "fd00:200::11", "10.200.0.11" ]; }, { name = "n2"; address = "10.200.0.12"; } );)";

IpAddress ip6(std::string_view text) { return IpAddress::parse(text).value(); }

TEST(DualStackConfigTest, TunnelModeServesIpv6VipsWithSource6OrTheInternalAddress6) {
  // tunnel.source6 given: no internal address6 needed.
  auto config = parseConfig(dualStack("", R"(tunnel = { source6 = "fd00:200::100/120"; };)", kDualNodes,
                                      R"(vips = [ "fd00:100::100", "10.100.0.100" ];)", R"(mode = "tunnel";)"),
                            "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_TRUE(config->dataplane.tunnel.source6.has_value());
  EXPECT_EQ(config->dataplane.tunnel.source6->str(), "fd00:200::100/120");
  EXPECT_EQ(config->services[0].mode, Mode::kTunnel);
  // The internal port's address6 alone is enough too.
  config = parseConfig(dualStack(kInt6, "", kDualNodes, R"(vip = "fd00:100::100";)", R"(mode = "tunnel";)"), "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_FALSE(config->dataplane.tunnel.source6.has_value());
}

TEST(DualStackConfigTest, LoadsIpv6PortsNodesVipsAndRanges) {
  const auto config = parseConfig(
      dualStack(kInt6, "", kDualNodes, R"(vips = [ "fd00:100::100", "10.100.0.100" ];)",
                R"(source_ranges = [ "198.51.100.0/24", "2001:db8::/32", "::/0" ];)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const PortConfig& ext = *config->port(PortRole::kExternal);
  EXPECT_EQ(ext.address6->str(), "fd00:100::1/64");
  EXPECT_EQ(ext.gateway6, ip6("fe80::1"));
  EXPECT_EQ(config->port(PortRole::kInternal)->address6->str(), "fd00:200::1/64");
  // Default SNAT sources: the internal port's address of each family.
  EXPECT_EQ(config->dataplane.snat.addresses, (std::vector<IpAddress>{ip("10.200.0.1"), ip6("fd00:200::1")}));
  EXPECT_EQ(config->dataplane.snat.of(IpFamily::kIpv6), (std::vector<IpAddress>{ip6("fd00:200::1")}));
  // Addresses are kept IPv4 first, whatever order they were written in.
  EXPECT_EQ(config->nodes[0].addresses, (std::vector<IpAddress>{ip("10.200.0.11"), ip6("fd00:200::11")}));
  EXPECT_EQ(config->nodes[0].address(IpFamily::kIpv6), ip6("fd00:200::11"));
  EXPECT_FALSE(config->nodes[1].address(IpFamily::kIpv6).has_value());
  const ServiceConfig& web = config->services[0];
  EXPECT_EQ(web.vips, (std::vector<IpAddress>{ip("10.100.0.100"), ip6("fd00:100::100")}));
  ASSERT_EQ(web.source_ranges.size(), 3u);
  EXPECT_EQ(web.source_ranges[1].str(), "2001:db8::/32");
  EXPECT_EQ(web.source_ranges[2].str(), "::/0");
}

TEST(DualStackConfigTest, Ipv6OnlyServiceWithExplicitSnat) {
  const auto config = parseConfig(
      dualStack("", R"(snat = { addresses = [ "10.200.0.1", "fd00:200::9" ]; };)",
                R"(nodes = ( { name = "n1"; address = "fd00:200::11"; } );)", R"(vip = "fd00:100::100";)"),
      "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->services[0].vips, (std::vector<IpAddress>{ip6("fd00:100::100")}));
  EXPECT_EQ(config->dataplane.snat.of(IpFamily::kIpv6), (std::vector<IpAddress>{ip6("fd00:200::9")}));
}

const std::string kN1 = R"(nodes = ( { name = "n1"; addresses = [ "10.200.0.11", "fd00:200::11" ]; } );)";

const std::vector<BadCase> kDualStackBadCases = {
    {"BothAddressSettings",
     dualStack(kInt6, "", R"(nodes = ( { name = "n1"; address = "10.200.0.11"; addresses = [ "fd00:200::11" ]; } );)",
               R"(vip = "10.100.0.100";)"),
     8, "nodes.[0].addresses", "set either address or addresses, not both"},
    {"NoNodeAddress", dualStack(kInt6, "", R"(nodes = ( { name = "n1"; } );)", R"(vip = "10.100.0.100";)"), 8,
     "nodes.[0].address", "required setting is missing"},
    {"TwoNodeAddressesOfOneFamily",
     dualStack(kInt6, "", R"(nodes = ( { name = "n1"; addresses = [ "fd00:200::11", "fd00:200::12" ]; } );)",
               R"(vip = "10.100.0.100";)"),
     8, "nodes.[0].addresses.[1]", "a second IPv6 address (fd00:200::12 after fd00:200::11); at most one per family"},
    {"ThreeVips", dualStack(kInt6, "", kN1, R"(vips = [ "10.100.0.100", "fd00:100::100", "10.100.0.101" ];)"), 10,
     "services.[0].vips", "expected one address per family (one IPv4, one IPv6, or one of each), got 3"},
    {"LinkLocalVip", dualStack(kInt6, "", kN1, R"(vip = "fe80::100";)"), 10, "services.[0].vip",
     "'fe80::100' is not a unicast host address"},
    {"MulticastVip", dualStack(kInt6, "", kN1, R"(vip = "ff02::1";)"), 10, "services.[0].vip",
     "'ff02::1' is not a unicast host address"},
    {"MappedVip", dualStack(kInt6, "", kN1, R"(vip = "::ffff:10.100.0.100";)"), 10, "services.[0].vip",
     "is not a unicast host address"},
    {"BadIpv6Vip", dualStack(kInt6, "", kN1, R"(vip = "fd00::100::1";)"), 10, "services.[0].vip",
     "'fd00::100::1' is not an IPv6 address"},
    {"VipIsNodeAddress", dualStack(kInt6, "", kN1, R"(vip = "fd00:200::11";)"), 10, "services.[0].vip",
     "VIP fd00:200::11 is the address of node 'n1'"},
    {"VipIsPortAddress", dualStack(kInt6, "", kN1, R"(vip = "fd00:100::1";)"), 10, "services.[0].vip",
     "VIP fd00:100::1 is the IPv6 address of port 'ext'"},
    {"Ipv6VipWithoutIpv6Nodes",
     dualStack(kInt6, "", R"(nodes = ( { name = "n1"; address = "10.200.0.11"; } );)", R"(vips = [ "10.100.0.100", "fd00:100::100" ];)"),
     10, "services.[0].vips", "VIP fd00:100::100 is IPv6 but none of its nodes has an IPv6 address"},
    {"Ipv6VipWithoutIpv6Snat", dualStack("", "", kN1, R"(vip = "fd00:100::100";)"), 10, "services.[0].vip",
     "VIP fd00:100::100 needs an IPv6 SNAT source for full-NAT"},
    {"Gateway6OutsidePrefix",
     dualStack(R"(address6 = "fd00:200::1/64"; gateway6 = "fd00:999::1";)", "", kN1, R"(vip = "10.100.0.100";)"), 4,
     "dataplane.ports.[1].gateway6", "gateway6 fd00:999::1 is neither link-local nor inside the port's prefix fd00:200::/64"},
    {"Gateway6WithoutAddress6", dualStack(R"(gateway6 = "fe80::1";)", "", kN1, R"(vip = "10.100.0.100";)"), 4,
     "dataplane.ports.[1].gateway6", "gateway6 needs address6"},
    {"Address6NotIpv6", dualStack(R"(address6 = "10.9.0.1/24";)", "", kN1, R"(vip = "10.100.0.100";)"), 4,
     "dataplane.ports.[1].address6", "'10.9.0.1/24' is not an IPv6 prefix"},
    {"Address6Overlaps", dualStack(R"(address6 = "fd00:100::2/64";)", "", kN1, R"(vip = "10.100.0.100";)"), 4,
     "dataplane.ports.[1].address6", "fd00:100::2/64 overlaps port 'ext' (fd00:100::1/64)"},
    {"Address6Slash128", dualStack(R"(address6 = "fd00:200::1/128";)", "", kN1, R"(vip = "10.100.0.100";)"), 4,
     "dataplane.ports.[1].address6", "a /128 leaves no room for neighbours"},
    {"DuplicateIpv6Frontend",
     dualStack(kInt6, "", kN1, R"(vip = "fd00:100::100";)",
               R"(}, { namespace = "default"; name = "web2"; vip = "fd00:100::100"; ports = ( { protocol = "TCP"; port = 80; node_port = 30081; } );)"),
     12, "services.[1].ports.[0]", "[fd00:100::100]:80/TCP is already used by services.[0].ports.[0] (default/web)"},
    {"Ipv6TunnelVipWithoutOuterSource", dualStack("", "", kN1, R"(vip = "fd00:100::100";)", R"(mode = "tunnel";)"), 10,
     "services.[0].vip", "VIP fd00:100::100 needs an IPv6 outer source for tunnel mode (IPv6-in-IPv6)"},
    {"TunnelSource6TooWide", dualStack(kInt6, R"(tunnel = { source6 = "fd00:300::/64"; };)", kN1, R"(vip = "10.100.0.100";)"),
     6, "dataplane.tunnel.source6", "'fd00:300::/64' is wider than /112"},
    {"TunnelSource6HostBits", dualStack(kInt6, R"(tunnel = { source6 = "fd00:300::1/120"; };)", kN1, R"(vip = "10.100.0.100";)"),
     6, "dataplane.tunnel.source6", "has host bits set (did you mean fd00:300::/120?)"},
    {"TunnelSource6HoldsThePortAddress",
     dualStack(kInt6, R"(tunnel = { source6 = "fd00:200::/120"; };)", kN1, R"(vip = "10.100.0.100";)"), 6,
     "dataplane.tunnel.source6", "contains fd00:200::1, which is the IPv6 address of port 'int'"},
    {"TunnelSource6NotIpv6", dualStack(kInt6, R"(tunnel = { source6 = "10.200.0.64/26"; };)", kN1, R"(vip = "10.100.0.100";)"),
     6, "dataplane.tunnel.source6", "'10.200.0.64/26' is not an IPv6 prefix"},
    {"TunnelSource6Multicast", dualStack(kInt6, R"(tunnel = { source6 = "ff05::/120"; };)", kN1, R"(vip = "10.100.0.100";)"),
     6, "dataplane.tunnel.source6", "is not global unicast"},
    {"NodeInsideTunnelSource6",
     dualStack(kInt6, R"(tunnel = { source6 = "fd00:200::10/124"; };)", kN1, R"(vip = "10.100.0.100";)"), 8,
     "nodes.[0].addresses", "node address fd00:200::11 is inside dataplane.tunnel.source6 fd00:200::10/124"},
    {"Ipv6VipInsideTunnelSource6",
     dualStack(kInt6, R"(tunnel = { source6 = "fd00:100::100/120"; };)", kN1, R"(vip = "fd00:100::101";)"), 10,
     "services.[0].vip", "VIP fd00:100::101 is inside dataplane.tunnel.source6 fd00:100::100/120"},
    {"DuplicateIpv6Snat", dualStack(kInt6, R"(snat = { addresses = [ "fd00:200::9", "fd00:200::9" ]; };)", kN1,
                                    R"(vip = "10.100.0.100";)"),
     6, "dataplane.snat.addresses.[1]", "fd00:200::9 is listed twice"},
};

INSTANTIATE_TEST_SUITE_P(DualStack, BrokenConfigTest, testing::ValuesIn(kDualStackBadCases),
                         [](const testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ConfigHelpersTest, ParseIpv4) {
  EXPECT_EQ(parseIpv4("10.200.0.1"), 0x0ac80001u);
  EXPECT_EQ(parseIpv4("0.0.0.0"), 0u);
  EXPECT_EQ(parseIpv4("255.255.255.255"), 0xffffffffu);
  for (std::string_view bad : {"", "10.0.0", "10.0.0.1.2", "10.0.0.256", "10.0.0.01",
                               "10..0.1", " 10.0.0.1", "10.0.0.1 ", "a.b.c.d", "10.0.0.-1",
                               "10.0.0.1/24", "4294967296"}) {
    EXPECT_FALSE(parseIpv4(bad).has_value()) << bad;
  }
}

TEST(ConfigHelpersTest, ParseIpv4Prefix) {
  EXPECT_EQ(parseIpv4Prefix("10.100.0.1/24"),
            (Ipv4Prefix{.address = 0x0a640001u, .length = 24}));
  EXPECT_EQ(parseIpv4Prefix("0.0.0.0/0"), (Ipv4Prefix{.address = 0, .length = 0}));
  for (std::string_view bad : {"10.0.0.1", "10.0.0.1/", "10.0.0.1/33", "10.0.0.1/024",
                               "10.0.0/8", "/8", "10.0.0.1/8/8", "10.0.0.1/x"}) {
    EXPECT_FALSE(parseIpv4Prefix(bad).has_value()) << bad;
  }
}

TEST(ConfigHelpersTest, FormatIpv4RoundTrips) {
  EXPECT_EQ(formatIpv4(0x0ac80001u), "10.200.0.1");
  EXPECT_EQ(formatIpv4(0), "0.0.0.0");
  EXPECT_EQ(formatIpv4(0xffffffffu), "255.255.255.255");
  EXPECT_EQ(parseIpv4(formatIpv4(0xc0a80a0bu)), 0xc0a80a0bu);
}

TEST(ConfigHelpersTest, ParseMac) {
  EXPECT_EQ(parseMac("02:00:0a:C8:00:0B"), (Mac{0x02, 0x00, 0x0a, 0xc8, 0x00, 0x0b}));
  for (std::string_view bad : {"", "02:00:0a:c8:00", "02:00:0a:c8:00:0b:01", "02-00-0a-c8-00-0b",
                               "02:00:0a:c8:00:0g", "2:00:0a:c8:00:0b0", "+2:00:0a:c8:00:0b"}) {
    EXPECT_FALSE(parseMac(bad).has_value()) << bad;
  }
}

TEST(ConfigHelpersTest, PortByRole) {
  Config config;
  EXPECT_EQ(config.port(PortRole::kExternal), nullptr);
  config.dataplane.ports.resize(2);
  config.dataplane.ports[0].name = "a";
  config.dataplane.ports[0].role = PortRole::kInternal;
  config.dataplane.ports[1].name = "b";
  config.dataplane.ports[1].role = PortRole::kExternal;
  EXPECT_EQ(config.port(PortRole::kExternal)->name, "b");
  EXPECT_EQ(config.port(PortRole::kInternal)->name, "a");
}

}  // namespace
}  // namespace ng::conf

namespace ng::conf {
namespace {

TEST(ConfigApiTest, LoopbackListenAddresses) {
  EXPECT_TRUE(isLoopbackListen("127.0.0.1:9080"));
  EXPECT_TRUE(isLoopbackListen("127.1.2.3:1"));
  EXPECT_TRUE(isLoopbackListen("localhost:9080"));
  EXPECT_TRUE(isLoopbackListen("[::1]:9080"));
  EXPECT_FALSE(isLoopbackListen("0.0.0.0:9080"));
  EXPECT_FALSE(isLoopbackListen("10.0.0.1:9080"));
  EXPECT_FALSE(isLoopbackListen("[::]:9080"));
  EXPECT_FALSE(isLoopbackListen("lb.example.com:9080"));
}

TEST(ConfigApiTest, OpenListenAddressWithTokenAndHealthSettings) {
  const auto config = parseConfig(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "d1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
api = { listen = "0.0.0.0:9080"; token_file = "/etc/nodegate/token"; tls_cert = "c.pem"; tls_key = "k.pem"; };
health = { interval_ms = 1000; timeout_ms = 500; cluster_probe = "tcp"; kube_proxy_port = 10257;
           source_address = "10.200.0.2"; all_down = "drop"; };
)", "t.conf");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->api.token_file, "/etc/nodegate/token");
  EXPECT_EQ(config->api.tls_key, "k.pem");
  EXPECT_EQ(config->health.cluster_probe, ClusterProbe::kTcp);
  EXPECT_EQ(config->health.kube_proxy_port, 10257);
  EXPECT_EQ(config->health.source_address, parseIpv4("10.200.0.2"));
  EXPECT_EQ(config->health.all_down, AllDownPolicy::kDrop);
}

}  // namespace
}  // namespace ng::conf
