#include "control/load_balancers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/ipam.h"
#include "control/state_file.h"

namespace ng::control {
namespace {

using nlohmann::json;

uint32_t ip(const char* text) { return conf::parseIpv4(text).value(); }

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ng-lb-test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

conf::Config boxConfig() {
  auto cfg = conf::parseConfig(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "d1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
pools = ( { name = "a"; cidrs = [ "10.100.0.100/30" ]; }, { name = "b"; cidrs = [ "10.100.0.120/31" ]; } );
nodes = ( { name = "n1"; address = "10.200.0.11"; } );
services = ( { namespace = "cfg"; name = "static"; vip = "10.100.0.100";
               ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); } );
)", "box.conf");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
  return *cfg;
}

json web(const char* extra = "") {
  json j = json::parse(R"({"ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 31080}],
                           "nodes": [{"name": "n1", "address": "10.200.0.11"}, {"name": "n2", "address": "10.200.0.12"}]})");
  if (*extra) j.update(json::parse(extra));
  return j;
}

// --- request validation -------------------------------------------------------------

struct BadRequest {
  const char* label;
  const char* body;
  const char* error;  // exact
};

class BadRequestTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(BadRequestTest, NamesTheField) {
  const BadRequest& c = GetParam();
  auto spec = parseLoadBalancerSpec(json::parse(c.body), "shop", "web");
  ASSERT_FALSE(spec.has_value());
  EXPECT_EQ(spec.error(), c.error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadRequestTest,
    ::testing::Values(
        BadRequest{"NotObject", R"([1])", "body: expected a JSON object"},
        BadRequest{"NoPorts", R"({})", "ports: expected a non-empty array"},
        BadRequest{"UnknownField", R"({"ports": [{"port": 80}], "color": "red"})", "color: unknown field"},
        BadRequest{"UnknownPortField", R"({"ports": [{"port": 80, "targetPort": 8080}]})",
                   "ports[0].targetPort: unknown field"},
        BadRequest{"PortRange", R"({"ports": [{"port": 0}]})", "ports[0].port: 0 is not an integer in 1..65535"},
        BadRequest{"NodePortRange", R"({"ports": [{"port": 80, "nodePort": 70000}]})",
                   "ports[0].nodePort: 70000 is not an integer in 0..65535"},
        BadRequest{"NegativeNodePort", R"({"ports": [{"port": 80, "nodePort": -1}]})",
                   "ports[0].nodePort: -1 is not an integer in 0..65535"},
        BadRequest{"Protocol", R"({"ports": [{"port": 80, "protocol": "ICMP"}]})",
                   "ports[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP"},
        BadRequest{"DuplicatePort", R"({"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]})",
                   "ports[1]: port 80/TCP is listed twice"},
        BadRequest{"NodeAddress", R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "address": "10.0.0.300"}]})",
                   "nodes[0].address: '10.0.0.300' is not an IP address"},
        BadRequest{"NodeLinkLocal", R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "address": "fe80::1"}]})",
                   "nodes[0].address: 'fe80::1' is not a unicast host address (multicast, loopback, unspecified, "
                   "link-local and reserved addresses are refused)"},
        BadRequest{"NodeTwoOfAFamily",
                   R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "addresses": ["fd00::1", "fd00::2"]}]})",
                   "nodes[0].addresses[1]: a second IPv6 address; at most one per family"},
        BadRequest{"NodeAddressAndAddresses",
                   R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "address": "10.0.0.1", "addresses": ["fd00::1"]}]})",
                   "nodes[0]: expected address (one) or addresses (one per family), exactly one of them"},
        BadRequest{"NodeAddressesNotAList",
                   R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "addresses": "fd00::1"}]})",
                   "nodes[0].addresses: expected an array"},
        BadRequest{"NodeTwice",
                   R"({"ports": [{"port": 80}], "nodes": [{"name": "n1", "address": "10.0.0.1"}, {"name": "n1", "address": "10.0.0.2"}]})",
                   "nodes[1].name: 'n1' is listed twice"},
        BadRequest{"Policy", R"({"ports": [{"port": 80}], "externalTrafficPolicy": "local"})",
                   "externalTrafficPolicy: 'local' is not one of Cluster, Local"},
        BadRequest{"LocalWithoutHcnp", R"({"ports": [{"port": 80}], "externalTrafficPolicy": "Local"})",
                   "healthCheckNodePort: required with externalTrafficPolicy Local"},
        BadRequest{"Affinity", R"({"ports": [{"port": 80}], "sessionAffinity": "Cookie"})",
                   "sessionAffinity: 'Cookie' is not one of None, ClientIP"},
        BadRequest{"AffinityTimeout", R"({"ports": [{"port": 80}], "sessionAffinityTimeoutSeconds": 86401})",
                   "sessionAffinityTimeoutSeconds: 86401 is not an integer in 1..86400"},
        BadRequest{"SourceRange", R"({"ports": [{"port": 80}], "loadBalancerSourceRanges": ["10.0.0.0/33"]})",
                   "loadBalancerSourceRanges[0]: '10.0.0.0/33' is not an IP prefix (address/length)"},
        BadRequest{"SourceRangeHostBits", R"({"ports": [{"port": 80}], "loadBalancerSourceRanges": ["2001:db8::1/32"]})",
                   "loadBalancerSourceRanges[0]: '2001:db8::1/32' has host bits set (did you mean 2001:db8::/32?)"},
        BadRequest{"RequestedIp", R"({"ports": [{"port": 80}], "loadBalancerIP": "nope"})",
                   "loadBalancerIP: 'nope' is not an IP address"},
        BadRequest{"RequestedIpOfOtherFamily",
                   R"({"ports": [{"port": 80}], "loadBalancerIP": "fd00::121", "ipFamilies": ["IPv4"]})",
                   "loadBalancerIP: fd00::121 is IPv6, not one of the ipFamilies"},
        BadRequest{"RequestedIpAndIps",
                   R"({"ports": [{"port": 80}], "loadBalancerIP": "10.100.0.121", "loadBalancerIPs": ["fd00::121"]})",
                   "loadBalancerIPs: set either loadBalancerIP or loadBalancerIPs, not both"},
        BadRequest{"RequestedIpsTwoOfAFamily", R"({"ports": [{"port": 80}], "loadBalancerIPs": ["fd00::1", "fd00::2"]})",
                   "loadBalancerIPs[1]: a second IPv6 address; at most one per family"},
        BadRequest{"UnknownFamily", R"({"ports": [{"port": 80}], "ipFamilies": ["IPv5"]})",
                   "ipFamilies[0]: \"IPv5\" is not one of IPv4, IPv6"},
        BadRequest{"FamilyTwice", R"({"ports": [{"port": 80}], "ipFamilies": ["IPv6", "IPv6"]})",
                   "ipFamilies[1]: \"IPv6\" is listed twice"},
        BadRequest{"NoFamily", R"({"ports": [{"port": 80}], "ipFamilies": []})",
                   "ipFamilies: expected [\"IPv4\"], [\"IPv6\"] or both, primary first"},
        BadRequest{"NameMismatch", R"({"name": "other", "ports": [{"port": 80}]})",
                   "name: 'other' does not match the path ('web')"}),
    [](const auto& info) { return info.param.label; });

TEST(LoadBalancerSpec, ParsesEveryFieldAndRoundTrips) {
  auto spec = parseLoadBalancerSpec(
      web(R"({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "sessionAffinity": "ClientIP",
              "sessionAffinityTimeoutSeconds": 600, "loadBalancerSourceRanges": ["198.51.100.0/24"],
              "loadBalancerIP": "10.100.0.121", "sharingKey": "k", "ipFamilies": ["IPv4"]})"),
      "shop", "web");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  EXPECT_EQ(spec->id(), "shop/web");
  EXPECT_EQ(spec->policy, conf::TrafficPolicy::kLocal);
  EXPECT_TRUE(spec->client_ip_affinity);
  EXPECT_EQ(spec->affinity_timeout_seconds, 600u);
  EXPECT_EQ(spec->requested_ips, std::vector<conf::IpAddress>{ip("10.100.0.121")});
  ASSERT_EQ(spec->nodes.size(), 2u);
  auto again = parseLoadBalancerSpec(specJson(*spec), "shop", "web");
  ASSERT_TRUE(again.has_value()) << again.error();
  EXPECT_EQ(specJson(*again), specJson(*spec));
  EXPECT_FALSE(parseLoadBalancerSpec(web(), "Shop", "web").has_value()) << "namespace must be a DNS label";
}

// --- IPAM ---------------------------------------------------------------------------

TEST(Ipam, AllocatesLowestFreeSkippingStaticAndHonoursRequests) {
  Ipam ipam(boxConfig().pools);
  ipam.setStatic({{ip("10.100.0.100"), "cfg/static"}});
  EXPECT_EQ(ipam.allocate({.owner = "a/one"}).value(), ip("10.100.0.101"));
  EXPECT_EQ(ipam.allocate({.owner = "a/two"}).value(), ip("10.100.0.102"));
  EXPECT_EQ(ipam.allocate({.owner = "a/one"}).value(), ip("10.100.0.101")) << "idempotent";
  EXPECT_EQ(ipam.allocate({.owner = "a/req", .requested = ip("10.100.0.121")}).value(), ip("10.100.0.121"));
  EXPECT_EQ(ipam.allocate({.owner = "a/x", .requested = ip("10.100.0.50")}).error(), "10.100.0.50 is not in any pool");
  EXPECT_EQ(ipam.allocate({.owner = "a/x", .requested = ip("10.100.0.101")}).error(), "10.100.0.101 is in use by a/one");
  EXPECT_EQ(ipam.allocate({.owner = "a/x", .requested = ip("10.100.0.100")}).error(),
            "10.100.0.100 is the static VIP of cfg/static (config file)");
  EXPECT_EQ(ipam.allocate({.owner = "a/three"}).value(), ip("10.100.0.103"));
  EXPECT_EQ(ipam.allocate({.owner = "a/four"}).value(), ip("10.100.0.120")) << "second pool";
  EXPECT_EQ(ipam.allocate({.owner = "a/five"}).error(), "no free IPv4 address in any pool");
  ipam.release("a/two");
  EXPECT_EQ(ipam.allocate({.owner = "a/five"}).value(), ip("10.100.0.102"));
}

TEST(Ipam, SharingKeyAllowsOneAddressWhenPortsDoNotCollide) {
  Ipam ipam(boxConfig().pools);
  const PortKey http{conf::Protocol::kTcp, 80};
  const PortKey dns{conf::Protocol::kUdp, 53};
  const conf::IpAddress a = ipam.allocate({.owner = "s/web", .sharing_key = "k", .ports = {http}}).value();
  EXPECT_EQ(ipam.allocate({.owner = "s/dns", .requested = a, .sharing_key = "k", .ports = {dns}}).value(), a);
  EXPECT_EQ(ipam.allocate({.owner = "s/web2", .requested = a, .sharing_key = "k", .ports = {http}}).error(),
            "10.100.0.100 is shared with s/web, which already uses port 80/TCP");
  EXPECT_EQ(ipam.allocate({.owner = "s/other", .requested = a, .sharing_key = "j", .ports = {dns}}).error(),
            "10.100.0.100 is in use by s/web (sharing key 'k')");
}

TEST(Ipam, AllocatesPerFamilyFromMixedPools) {
  using conf::IpAddress;
  using conf::IpFamily;
  auto v6 = [](const char* t) { return IpAddress::parse(t).value(); };
  std::vector<conf::PoolConfig> pools = {
      {.name = "mixed", .cidrs = {conf::IpPrefix::parse("fd00:100::/126").value(), conf::IpPrefix::parse("10.100.0.100/31").value()}},
      {.name = "big6", .cidrs = {conf::IpPrefix::parse("2001:db8::/64").value()}}};
  Ipam ipam(pools);
  ipam.setStatic({{v6("fd00:100::"), "cfg/static6"}});
  const AllocationRequest dual4{.owner = "a/dual", .family = IpFamily::kIpv4};
  const AllocationRequest dual6{.owner = "a/dual", .family = IpFamily::kIpv6};
  EXPECT_EQ(ipam.allocate(dual4).value(), IpAddress(ip("10.100.0.100")));
  EXPECT_EQ(ipam.allocate(dual6).value(), v6("fd00:100::1")) << "lowest free IPv6, after the static one";
  EXPECT_EQ(ipam.addressOf("a/dual", IpFamily::kIpv4), IpAddress(ip("10.100.0.100")));
  EXPECT_EQ(ipam.addressOf("a/dual", IpFamily::kIpv6), v6("fd00:100::1"));
  EXPECT_EQ(ipam.allocate(dual6).value(), v6("fd00:100::1")) << "idempotent per family";
  EXPECT_EQ(ipam.allocate({.owner = "b/x", .family = IpFamily::kIpv6, .requested = v6("fd00:100::1")}).error(),
            "fd00:100::1 is in use by a/dual");
  EXPECT_EQ(ipam.allocate({.owner = "b/x", .family = IpFamily::kIpv4, .requested = v6("fd00:100::2")}).error(),
            "fd00:100::2 is not an IPv4 address");
  // fd00:100::2 and ::3 fill the /126, then the second pool's /64 (walked, never listed).
  EXPECT_EQ(ipam.allocate({.owner = "c/1", .family = IpFamily::kIpv6}).value(), v6("fd00:100::2"));
  EXPECT_EQ(ipam.allocate({.owner = "c/2", .family = IpFamily::kIpv6}).value(), v6("fd00:100::3"));
  EXPECT_EQ(ipam.allocate({.owner = "c/3", .family = IpFamily::kIpv6}).value(), v6("2001:db8::"));
  EXPECT_EQ(ipam.poolOf(v6("2001:db8::ffff:1")), "big6");
  EXPECT_FALSE(ipam.poolOf(v6("2001:db8:1::1")).has_value());
  // Releasing one family keeps the other.
  ipam.release("a/dual", IpFamily::kIpv6);
  EXPECT_FALSE(ipam.addressOf("a/dual", IpFamily::kIpv6).has_value());
  EXPECT_EQ(ipam.addressOf("a/dual", IpFamily::kIpv4), IpAddress(ip("10.100.0.100")));
  EXPECT_EQ(ipam.allocate({.owner = "c/4", .family = IpFamily::kIpv6}).value(), v6("fd00:100::1"));
  ipam.release("a/dual");
  EXPECT_FALSE(ipam.addressOf("a/dual", IpFamily::kIpv4).has_value());
}

// --- state file ---------------------------------------------------------------------

TEST(StateFile, RoundTripsAndDetectsCorruption) {
  TempDir dir;
  StateFile file(dir.file("sub/state.json"));
  EXPECT_FALSE(file.read().value().has_value()) << "missing file = no state";
  ASSERT_TRUE(file.write(json{{"x", 1}}).has_value());
  EXPECT_EQ(file.read().value().value(), (json{{"x", 1}}));
  EXPECT_FALSE(std::filesystem::exists(dir.file("sub/state.json.tmp")));

  std::string text;
  {
    std::ifstream in(dir.file("sub/state.json"));
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto rewrite = [&](const std::string& content) { std::ofstream(dir.file("sub/state.json")) << content; };
  rewrite(text.substr(0, text.size() / 2));  // torn
  EXPECT_NE(file.read().error().find("corrupt (not JSON"), std::string::npos) << file.read().error();
  std::string edited = text;
  edited.replace(edited.find("\"x\": 1"), 6, "\"x\": 2");
  rewrite(edited);
  EXPECT_NE(file.read().error().find("checksum mismatch"), std::string::npos);
  rewrite(R"({"hello": "world"})");
  EXPECT_NE(file.read().error().find("not a NodeGate state file"), std::string::npos);
}

TEST(LoadBalancerSpec, ModeIsOptionalAndChecked) {
  auto spec = parseLoadBalancerSpec(json::parse(R"({"ports": [{"port": 80, "nodePort": 31080}], "mode": "tunnel"})"),
                                    "shop", "web");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_EQ(spec->mode, conf::Mode::kTunnel);
  EXPECT_EQ(specJson(*spec)["mode"], "tunnel");
  auto none = parseLoadBalancerSpec(json::parse(R"({"ports": [{"port": 80, "nodePort": 31080}]})"), "shop", "web");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->mode.has_value());
  EXPECT_FALSE(specJson(*none).contains("mode"));
  auto bad = parseLoadBalancerSpec(json::parse(R"({"ports": [{"port": 80, "nodePort": 31080}], "mode": "dsr"})"),
                                   "shop", "web");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "mode: 'dsr' is not one of fullnat, tunnel");
}

// --- registry -----------------------------------------------------------------------

TEST(LoadBalancerRegistry, EnsureGetDeleteAndSurviveARestart) {
  TempDir dir;
  const conf::Config cfg = boxConfig();
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_EQ(reg.load(cfg).value(), 0u);
  EXPECT_EQ(reg.get("shop", "web").status, 404);

  auto r = reg.ensure(web(), "shop", "web");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.body["ingress"][0]["ip"], "10.100.0.101");
  EXPECT_EQ(r.body["ingress"][0]["ipMode"], "Proxy");
  auto again = reg.ensure(web(), "shop", "web");
  EXPECT_EQ(again.status, 200);
  EXPECT_FALSE(again.changed) << "the same request twice changes nothing";

  // A tunnel-mode load balancer reports ipMode VIP and reaches the model in tunnel mode.
  auto dsr = reg.ensure(web(R"({"ports": [{"port": 80, "nodePort": 31080}], "mode": "tunnel",
                                "nodes": [{"name": "n1", "address": "10.200.0.11"}]})"),
                        "shop", "dsr");
  ASSERT_EQ(dsr.status, 200) << dsr.body.dump();
  EXPECT_EQ(dsr.body["ingress"][0]["ipMode"], "VIP");
  EXPECT_EQ(dsr.body["spec"]["mode"], "tunnel");
  const conf::Config model = reg.merged(cfg);
  const auto it = std::ranges::find_if(model.services, [](const conf::ServiceConfig& s) { return s.name == "dsr"; });
  ASSERT_NE(it, model.services.end());
  EXPECT_EQ(it->mode, conf::Mode::kTunnel);
  ASSERT_EQ(reg.remove("shop", "dsr").status, 200);

  auto sctp = reg.ensure(web(R"({"ports": [{"port": 80, "nodePort": 31080}, {"port": 9, "protocol": "SCTP", "nodePort": 31009},
                                          {"port": 81, "nodePort": 0}]})"),
                         "shop", "mixed");
  ASSERT_EQ(sctp.status, 200) << sctp.body.dump();
  const json& ports = sctp.body["ingress"][0]["ports"];
  EXPECT_FALSE(ports[0].contains("error"));
  EXPECT_EQ(ports[1]["error"], "protocol SCTP is not supported (TCP and UDP are)");
  EXPECT_NE(ports[2]["error"].get<std::string>().find("no nodePort"), std::string::npos);

  // The model the compiler sees: both load balancers, their nodes, only servable ports.
  const conf::Config merged = reg.merged(cfg);
  ASSERT_EQ(merged.services.size(), 3u);
  EXPECT_EQ(merged.nodes.size(), 2u) << "n1 from the config, n2 from the load balancers";
  const auto& mixed = merged.services[1].name == "mixed" ? merged.services[1] : merged.services[2];
  EXPECT_EQ(mixed.ports.size(), 1u);

  // A restart: same addresses, same specs.
  LoadBalancerRegistry restarted(dir.file("lb.json"));
  ASSERT_EQ(restarted.load(cfg).value(), 2u);
  EXPECT_EQ(restarted.get("shop", "web").body["ingress"][0]["ip"], "10.100.0.101");
  EXPECT_EQ(restarted.get("shop", "mixed").body["ingress"][0]["ip"], "10.100.0.102");

  auto gone = restarted.remove("shop", "web");
  EXPECT_EQ(gone.body["deleted"], true);
  EXPECT_EQ(restarted.remove("shop", "web").body["deleted"], false) << "idempotent";
  EXPECT_EQ(restarted.get("shop", "web").status, 404);
  LoadBalancerRegistry third(dir.file("lb.json"));
  EXPECT_EQ(third.load(cfg).value(), 1u);
}

conf::Config dualStackBox() {
  auto cfg = conf::parseConfig(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; address6 = "fd00:100::1/64"; },
    { name = "int"; device = "d1"; role = "internal"; address = "10.200.0.1/24"; address6 = "fd00:200::1/64"; }
  );
};
pools = ( { name = "a"; cidrs = [ "10.100.0.100/30", "fd00:100::100/126" ]; } );
)", "box.conf");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
  return *cfg;
}

TEST(LoadBalancerRegistry, DualStackGetsOneAddressPerFamilyInIpFamiliesOrder) {
  TempDir dir;
  const conf::Config cfg = dualStackBox();
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_EQ(reg.load(cfg).value(), 0u);
  const char* nodes = R"({"nodes": [{"name": "n1", "addresses": ["fd00:200::11", "10.200.0.11"]},
                                    {"name": "n2", "address": "fd00:200::12"}]})";
  json body = web(nodes);
  body["ipFamilies"] = json::array({"IPv6", "IPv4"});
  auto r = reg.ensure(body, "shop", "web");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  ASSERT_EQ(r.body["ingress"].size(), 2u);
  EXPECT_EQ(r.body["ingress"][0]["ip"], "fd00:100::100") << "the primary family first";
  EXPECT_EQ(r.body["ingress"][1]["ip"], "10.100.0.100");
  EXPECT_EQ(r.body["spec"]["nodes"][0]["addresses"], json::array({"10.200.0.11", "fd00:200::11"}));
  EXPECT_EQ(reg.addressesOf("shop/web"),
            (std::vector<conf::IpAddress>{conf::IpAddress::parse("fd00:100::100").value(), ip("10.100.0.100")}));

  // The compiler's model: one Service with both VIPs; nodes keep both their addresses.
  const conf::Config merged = reg.merged(cfg);
  ASSERT_EQ(merged.services.size(), 1u);
  EXPECT_EQ(merged.services[0].vips.size(), 2u);
  EXPECT_EQ(merged.nodes[0].addresses.size(), 2u);

  // A requested IPv6 address for an IPv6-only load balancer (ipFamilies from the request).
  json v6only = web(nodes);
  v6only["loadBalancerIPs"] = json::array({"fd00:100::103"});
  auto v6 = reg.ensure(v6only, "shop", "v6");
  ASSERT_EQ(v6.status, 200) << v6.body.dump();
  ASSERT_EQ(v6.body["ingress"].size(), 1u);
  EXPECT_EQ(v6.body["ingress"][0]["ip"], "fd00:100::103");
  EXPECT_EQ(v6.body["spec"]["ipFamilies"], json::array({"IPv6"}));

  // An IPv6 address outside every pool: refused, nothing changes (the IPv4 one neither).
  json outside = web(nodes);
  outside["ipFamilies"] = json::array({"IPv4", "IPv6"});
  outside["loadBalancerIPs"] = json::array({"fd00:999::1"});
  auto refused = reg.ensure(outside, "shop", "outside");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body["error"], "loadBalancerIP: fd00:999::1 is not in any pool");
  EXPECT_EQ(reg.get("shop", "outside").status, 404);
  auto next = reg.ensure(web(R"({"nodes": [{"name": "n3", "address": "10.200.0.13"}]})"), "shop", "next");
  EXPECT_EQ(next.body["ingress"][0]["ip"], "10.100.0.101") << "the refused request held nothing; " << next.body.dump();

  // Restart: every address of every family is where it was.
  LoadBalancerRegistry restarted(dir.file("lb.json"));
  ASSERT_EQ(restarted.load(cfg).value(), 3u);
  EXPECT_EQ(restarted.get("shop", "web").body["ingress"], r.body["ingress"]);
  EXPECT_EQ(restarted.get("shop", "v6").body["ingress"][0]["ip"], "fd00:100::103");

  // Dual stack -> IPv4 only: the IPv6 address goes back to the pool.
  body["ipFamilies"] = json::array({"IPv4"});
  auto single = restarted.ensure(body, "shop", "web");
  ASSERT_EQ(single.status, 200) << single.body.dump();
  EXPECT_EQ(single.body["ingress"].size(), 1u);
  json other6 = web(nodes);
  other6["ipFamilies"] = json::array({"IPv6"});
  EXPECT_EQ(restarted.ensure(other6, "shop", "other6").body["ingress"][0]["ip"], "fd00:100::100");
}

TEST(LoadBalancerRegistry, ReadsStateFilesWrittenBeforeDualStack) {
  TempDir dir;
  const conf::Config cfg = boxConfig();
  // The IPv4-only format: "ip" instead of "ips", no ipFamilies in the spec.
  json old_spec = web();
  old_spec["namespace"] = "shop";
  old_spec["name"] = "web";
  ASSERT_TRUE(StateFile(dir.file("lb.json"))
                  .write(json{{"load_balancers", json::array({json{{"spec", old_spec}, {"ip", "10.100.0.102"}}})}})
                  .has_value());
  LoadBalancerRegistry reg(dir.file("lb.json"));
  auto loaded = reg.load(cfg);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  EXPECT_EQ(*loaded, 1u);
  EXPECT_EQ(reg.get("shop", "web").body["ingress"][0]["ip"], "10.100.0.102");
  // An address whose family the spec does not have is corruption, not something to guess.
  old_spec["ipFamilies"] = json::array({"IPv6"});
  ASSERT_TRUE(StateFile(dir.file("lb.json"))
                  .write(json{{"load_balancers", json::array({json{{"spec", old_spec}, {"ips", {"10.100.0.102"}}}})}})
                  .has_value());
  LoadBalancerRegistry mismatch(dir.file("lb.json"));
  auto bad = mismatch.load(cfg);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("shop/web: ips [\"10.100.0.102\"] do not match ipFamilies [\"IPv6\"]"), std::string::npos)
      << bad.error();
}

TEST(LoadBalancerRegistry, KubernetesLoadBalancersShareThePoolsButAreNotPersisted) {
  TempDir dir;
  const conf::Config cfg = boxConfig();
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_EQ(reg.load(cfg).value(), 0u);
  ASSERT_EQ(reg.ensure(web(), "shop", "api").status, 200);  // takes 10.100.0.101

  LoadBalancerSpec spec{.namespace_name = "shop", .name = "kube",
                        .ports = {{.name = "http", .protocol = "TCP", .port = 80, .node_port = 31080}},
                        .nodes = {{.name = "n1", .addresses = {ip("10.200.0.11")}}}};
  auto r = reg.ensureKubernetes(spec, false);
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(reg.addressesOf("shop/kube"), std::vector<conf::IpAddress>{ip("10.100.0.102")});
  EXPECT_EQ(reg.sourceOf("shop/kube"), LbSource::kKubernetes);
  EXPECT_FALSE(reg.ensureKubernetes(spec, false).changed) << "same spec, nothing to publish";
  EXPECT_EQ(reg.kubernetesIds(), std::vector<std::string>{"shop/kube"});

  // Each source keeps its hands off the other's load balancers.
  EXPECT_EQ(reg.ensure(web(), "shop", "kube").status, 409);
  EXPECT_EQ(reg.remove("shop", "kube").status, 409);
  EXPECT_EQ(reg.ensureKubernetes(LoadBalancerSpec{.namespace_name = "shop", .name = "api", .ports = spec.ports}, false)
                .status,
            409);

  // An old status address that is taken is only a wish: with fallback another one is used.
  LoadBalancerSpec wish = spec;
  wish.name = "wish";
  wish.requested_ips = {ip("10.100.0.101")};  // held by shop/api
  EXPECT_EQ(reg.ensureKubernetes(wish, false).status, 409);
  auto fell_back = reg.ensureKubernetes(wish, true);
  ASSERT_EQ(fell_back.status, 200) << fell_back.body.dump();
  EXPECT_EQ(reg.addressesOf("shop/wish"), std::vector<conf::IpAddress>{ip("10.100.0.103")});

  // Not in the state file: a restart sees only the REST-declared one.
  LoadBalancerRegistry restarted(dir.file("lb.json"));
  EXPECT_EQ(restarted.load(cfg).value(), 1u);
  EXPECT_FALSE(restarted.contains("shop/kube"));

  auto gone = reg.removeKubernetes("shop/kube");
  EXPECT_TRUE(gone.changed);
  EXPECT_FALSE(reg.removeKubernetes("shop/kube").changed) << "idempotent";
  EXPECT_EQ(reg.removeKubernetes("shop/api").status, 409);
  EXPECT_EQ(reg.merged(cfg).services.size(), 3u) << "config static + api + wish";
}

TEST(LoadBalancerRegistry, RefusesConflictsAndChangesNothing) {
  TempDir dir;
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_TRUE(reg.load(boxConfig()).has_value());
  auto static_ip = reg.ensure(web(R"({"loadBalancerIP": "10.100.0.100"})"), "shop", "web");
  EXPECT_EQ(static_ip.status, 409);
  EXPECT_EQ(static_ip.body["error"], "loadBalancerIP: 10.100.0.100 is the static VIP of cfg/static (config file)");
  auto moved_node = reg.ensure(web(R"({"nodes": [{"name": "n1", "address": "10.200.0.99"}]})"), "shop", "web");
  EXPECT_EQ(moved_node.status, 409);
  EXPECT_EQ(moved_node.body["error"], "nodes[0]: node 'n1' has address 10.200.0.11 elsewhere, not 10.200.0.99");
  auto own = reg.ensure(web(R"({"nodes": [{"name": "x", "address": "10.200.0.1"}]})"), "shop", "web");
  EXPECT_EQ(own.body["error"], "nodes[0].address: 10.200.0.1 is an address of the box");
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir.file("lb.json"))) << "nothing written for refused requests";
}

TEST(LoadBalancerRegistry, NodesOnlyUpdateKeepsTheRest) {
  TempDir dir;
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_TRUE(reg.load(boxConfig()).has_value());
  ASSERT_EQ(reg.ensure(web(R"({"sessionAffinity": "ClientIP"})"), "shop", "web").status, 200);
  EXPECT_EQ(reg.updateNodes(json::parse(R"({"nodes": []})"), "shop", "nope").status, 404);
  EXPECT_EQ(reg.updateNodes(json::parse(R"({"nodes": [], "ports": []})"), "shop", "web").status, 400);
  auto r = reg.updateNodes(json::parse(R"({"nodes": [{"name": "n3", "address": "10.200.0.13"}]})"), "shop", "web");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.body["spec"]["nodes"].size(), 1u);
  EXPECT_EQ(r.body["spec"]["sessionAffinity"], "ClientIP");
  EXPECT_EQ(r.body["ingress"][0]["ip"], "10.100.0.101");
}

TEST(LoadBalancerRegistry, MergedServiceCarriesPolicyRangesAndAffinity) {
  TempDir dir;
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_TRUE(reg.load(boxConfig()).has_value());
  ASSERT_EQ(reg.ensure(web(R"({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                               "sessionAffinity": "ClientIP", "sessionAffinityTimeoutSeconds": 60,
                               "loadBalancerSourceRanges": ["198.51.100.0/24"]})"),
                       "shop", "web").status,
            200);
  const conf::Config merged = reg.merged(boxConfig());
  ASSERT_EQ(merged.services.size(), 2u);
  const conf::ServiceConfig& svc = merged.services[1];
  EXPECT_EQ(svc.external_traffic_policy, conf::TrafficPolicy::kLocal);
  EXPECT_EQ(svc.health_check_node_port, 32000);
  EXPECT_EQ(svc.session_affinity, conf::SessionAffinity::kClientIp);
  EXPECT_EQ(svc.session_affinity_timeout, 60u);
  ASSERT_EQ(svc.source_ranges.size(), 1u);
  EXPECT_EQ(svc.source_ranges[0], (conf::IpPrefix{.address = ip("198.51.100.0"), .length = 24}));
  EXPECT_EQ(svc.node_names, (std::vector<std::string>{"n1", "n2"}));
}

TEST(LoadBalancerRegistry, CorruptStateStopsTheStartWithTheReason) {
  TempDir dir;
  std::ofstream(dir.file("lb.json")) << R"({"format": "nodegate-state/1", "sha256": "00", "data": {}})";
  LoadBalancerRegistry reg(dir.file("lb.json"));
  auto loaded = reg.load(boxConfig());
  ASSERT_FALSE(loaded.has_value());
  EXPECT_NE(loaded.error().find("checksum mismatch"), std::string::npos) << loaded.error();
}

TEST(LoadBalancerRegistry, ReloadThatTakesAnAllocatedAddressIsRefused) {
  TempDir dir;
  conf::Config cfg = boxConfig();
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_TRUE(reg.load(cfg).has_value());
  ASSERT_EQ(reg.ensure(web(), "shop", "web").status, 200);  // 10.100.0.101
  cfg.services.push_back(cfg.services[0]);
  cfg.services.back().name = "second";
  cfg.services.back().vips = {ip("10.100.0.101")};
  EXPECT_EQ(reg.conflictsWith(cfg),
            "box.conf: services.[1].vip: 10.100.0.101 is allocated to load balancer shop/web (declared through the API)");
}

// Tunnel mode over IPv6 is built: the request parses, and the registry refuses it only
// when the box has no IPv6 outer source (no dataplane.tunnel.source6, no internal address6).
TEST(LoadBalancerRegistry, Ipv6TunnelNeedsAnIpv6OuterSource) {
  auto spec = parseLoadBalancerSpec(
      json::parse(R"({"ports": [{"port": 80, "nodePort": 31080}], "mode": "tunnel", "ipFamilies": ["IPv6", "IPv4"]})"),
      "shop", "dsr6");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  EXPECT_EQ(spec->mode, conf::Mode::kTunnel);
  TempDir dir;
  const conf::Config cfg = boxConfig();  // IPv4-only ports
  LoadBalancerRegistry reg(dir.file("lb.json"));
  ASSERT_EQ(reg.load(cfg).value(), 0u);
  auto r = reg.ensure(web(R"({"ports": [{"port": 80, "nodePort": 31080}], "mode": "tunnel", "ipFamilies": ["IPv6"],
                             "nodes": [{"name": "n6", "addresses": ["fd00:200::11"]}]})"),
                      "shop", "dsr6");
  EXPECT_NE(r.status, 200);
  EXPECT_NE(r.body.dump().find("IPv6 in tunnel mode needs an IPv6 outer source"), std::string::npos) << r.body.dump();
}


}  // namespace
}  // namespace ng::control
