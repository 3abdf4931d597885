#include "control/kube_service.h"

#include <gtest/gtest.h>

namespace ng::control {
namespace {

using nlohmann::json;

// The Service of KUBERNETES.md's example.
json exampleService() {
  return json::parse(R"({"apiVersion":"v1","kind":"Service",
 "metadata":{"name":"web","namespace":"shop","uid":"5b1c7c3e-2f0a-4d5e-9a51-0c6f3c0f1a22","resourceVersion":"184467"},
 "spec":{"type":"LoadBalancer","loadBalancerClass":"nodegate.io/lb",
   "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":31080},
            {"name":"dns","protocol":"UDP","port":53,"targetPort":5353,"nodePort":31053}],
   "ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack",
   "externalTrafficPolicy":"Local","healthCheckNodePort":32456,
   "sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},
   "loadBalancerSourceRanges":["198.51.100.0/24"],"allocateLoadBalancerNodePorts":true},
 "status":{"loadBalancer":{}}})");
}

// The Node of KUBERNETES.md's example (tainted for the autoscaler).
json exampleNode() {
  return json::parse(R"({"apiVersion":"v1","kind":"Node",
 "metadata":{"name":"worker-1","resourceVersion":"99120",
   "labels":{"node.kubernetes.io/exclude-from-external-load-balancers":"false"}},
 "spec":{"taints":[{"key":"ToBeDeletedByClusterAutoscaler","value":"1718000000","effect":"NoSchedule"}]},
 "status":{"addresses":[{"type":"InternalIP","address":"192.0.2.11"},{"type":"InternalIP","address":"2001:db8:1::11"}],
   "conditions":[{"type":"Ready","status":"True"}]}})");
}

const std::vector<LbNode> kNodes = {{.name = "a", .addresses = {0x0a000001u}}, {.name = "b", .addresses = {0x0a000002u}}};

conf::IpAddress ip(std::string_view text) { return conf::IpAddress::parse(text).value(); }
conf::IpPrefix prefix(std::string_view text) { return conf::IpPrefix::parse(text).value(); }

TEST(KubeService, ExampleServiceTranslatesFieldByField) {
  auto t = translateService(exampleService(), kNodes, nullptr);
  ASSERT_TRUE(t) << t.error();
  const LoadBalancerSpec& s = t->spec;
  EXPECT_EQ(s.id(), "shop/web");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0], (LbPort{.name = "http", .protocol = "TCP", .port = 80, .node_port = 31080}));
  EXPECT_EQ(s.ports[1], (LbPort{.name = "dns", .protocol = "UDP", .port = 53, .node_port = 31053}));
  EXPECT_EQ(s.nodes, kNodes);
  EXPECT_EQ(s.policy, conf::TrafficPolicy::kLocal);
  EXPECT_EQ(s.health_check_node_port, 32456);
  EXPECT_TRUE(s.client_ip_affinity);
  EXPECT_EQ(s.affinity_timeout_seconds, 10800u);
  ASSERT_EQ(s.source_ranges.size(), 1u);
  EXPECT_EQ(s.source_ranges[0], prefix("198.51.100.0/24"));
  EXPECT_EQ(s.families, std::vector<conf::IpFamily>{conf::IpFamily::kIpv4});
  EXPECT_TRUE(s.requested_ips.empty());
  EXPECT_FALSE(t->fallback);
  EXPECT_TRUE(t->warnings.empty());
}

TEST(KubeService, ClassRule) {
  json svc = exampleService();
  EXPECT_TRUE(isOurClass(svc, "nodegate.io/lb"));
  EXPECT_FALSE(isOurClass(svc, "other.io/lb"));
  EXPECT_FALSE(isOurClass(svc, ""));  // default load balancer: only Services without a class
  svc["spec"].erase("loadBalancerClass");
  EXPECT_TRUE(isOurClass(svc, ""));
  EXPECT_FALSE(isOurClass(svc, "nodegate.io/lb"));
  svc["spec"]["type"] = "NodePort";
  EXPECT_FALSE(isOurClass(svc, ""));
  svc = exampleService();
  svc["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z";
  EXPECT_TRUE(isOurClass(svc, "nodegate.io/lb"));
  EXPECT_FALSE(wantsLoadBalancer(svc, "nodegate.io/lb"));
}

TEST(KubeService, ExampleNodeIsNotACandidateBecauseOfTheAutoscalerTaint) {
  json node = exampleNode();
  EXPECT_FALSE(candidateNode(node, conf::NodeAddressType::kInternalIp));
  node["spec"].erase("taints");
  auto n = candidateNode(node, conf::NodeAddressType::kInternalIp);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->name, "worker-1");
  // One address per family.
  EXPECT_EQ(n->addresses, (std::vector<conf::IpAddress>{ip("192.0.2.11"), ip("2001:db8:1::11")}));
}

TEST(KubeService, NodePredicates) {
  json node = exampleNode();
  node["spec"].erase("taints");
  auto& label = node["metadata"]["labels"][std::string(kExcludeLabel)];
  for (const char* off : {"false", "False", "0", "f", "F", "FALSE"}) {
    label = off;
    EXPECT_TRUE(candidateNode(node, conf::NodeAddressType::kInternalIp)) << off;
  }
  for (const char* on : {"true", "1", "", "yes", "no", "maybe"}) {  // unparsable: excluded
    label = on;
    EXPECT_FALSE(candidateNode(node, conf::NodeAddressType::kInternalIp)) << on;
  }
  node["metadata"]["labels"].erase(std::string(kExcludeLabel));
  EXPECT_TRUE(candidateNode(node, conf::NodeAddressType::kInternalIp));
  // NotReady and cordoned nodes stay: health checks decide.
  node["status"]["conditions"][0]["status"] = "False";
  node["spec"]["unschedulable"] = true;
  EXPECT_TRUE(candidateNode(node, conf::NodeAddressType::kInternalIp));
  // Being deleted: out.
  node["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z";
  EXPECT_FALSE(candidateNode(node, conf::NodeAddressType::kInternalIp));
}

TEST(KubeService, NodeAddressTypePreferenceAndFallback) {
  json node = json::parse(R"({"metadata":{"name":"n"},"status":{"addresses":[
      {"type":"Hostname","address":"n"},{"type":"ExternalIP","address":"203.0.113.5"},
      {"type":"InternalIP","address":"10.1.0.5"}]}})");
  using V = std::vector<conf::IpAddress>;
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kInternalIp)->addresses, V{ip("10.1.0.5")});
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kExternalIp)->addresses, V{ip("203.0.113.5")});
  node["status"]["addresses"].erase(2);
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kInternalIp)->addresses, V{ip("203.0.113.5")});  // fallback
  // Per family: an IPv6-only node is a candidate for IPv6 VIPs; the preference applies per
  // family (IPv6 InternalIP here, IPv4 only as ExternalIP).
  node["status"]["addresses"] = json::array({json{{"type", "InternalIP"}, {"address", "fd00::5"}}});
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kInternalIp)->addresses, V{ip("fd00::5")});
  node["status"]["addresses"].push_back(json{{"type", "ExternalIP"}, {"address", "203.0.113.5"}});
  node["status"]["addresses"].push_back(json{{"type", "ExternalIP"}, {"address", "2001:db8::5"}});
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kInternalIp)->addresses, (V{ip("203.0.113.5"), ip("fd00::5")}));
  EXPECT_EQ(candidateNode(node, conf::NodeAddressType::kExternalIp)->addresses,
            (V{ip("203.0.113.5"), ip("2001:db8::5")}));
  // Addresses that name no host are skipped; none left: not a candidate.
  node["status"]["addresses"] = json::array({json{{"type", "InternalIP"}, {"address", "fe80::5"}},
                                             json{{"type", "InternalIP"}, {"address", "not-an-ip"}}});
  EXPECT_FALSE(candidateNode(node, conf::NodeAddressType::kInternalIp));
}

TEST(KubeService, PortsThatCannotBeServedAreReportedInStatus) {
  json svc = exampleService();
  svc["spec"]["ports"] = json::parse(R"([{"name":"a","protocol":"TCP","port":80,"nodePort":31080},
      {"name":"b","protocol":"SCTP","port":9000,"nodePort":31090},{"name":"c","protocol":"TCP","port":81}])");
  auto t = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->spec.ports[2].node_port, 0);
  const json ingress = ingressFor(t->spec, {ip("203.0.113.10")}, "Proxy");
  EXPECT_EQ(ingress, json::parse(R"([{"ip":"203.0.113.10","ipMode":"Proxy","ports":[
      {"port":80,"protocol":"TCP"},{"port":9000,"protocol":"SCTP","error":"nodegate.io/UnsupportedProtocol"},
      {"port":81,"protocol":"TCP","error":"nodegate.io/NoNodePort"}]}])"));
  // All fine: no ports list at all.
  EXPECT_EQ(ingressFor(translateService(exampleService(), kNodes, nullptr)->spec, {ip("203.0.113.10")}, "VIP"),
            json::parse(R"([{"ip":"203.0.113.10","ipMode":"VIP"}])"));
  // Dual stack: one entry per address, in the order given (ipFamilies order), each with
  // the port errors.
  EXPECT_EQ(ingressFor(t->spec, {ip("2001:db8::10"), ip("203.0.113.10")}, "Proxy"),
            json::parse(R"([{"ip":"2001:db8::10","ipMode":"Proxy","ports":[
      {"port":80,"protocol":"TCP"},{"port":9000,"protocol":"SCTP","error":"nodegate.io/UnsupportedProtocol"},
      {"port":81,"protocol":"TCP","error":"nodegate.io/NoNodePort"}]},
      {"ip":"203.0.113.10","ipMode":"Proxy","ports":[
      {"port":80,"protocol":"TCP"},{"port":9000,"protocol":"SCTP","error":"nodegate.io/UnsupportedProtocol"},
      {"port":81,"protocol":"TCP","error":"nodegate.io/NoNodePort"}]}])"));
}

TEST(KubeService, ForwardingModeAnnotationSelectsTunnelModeAndKeepsTheLastGoodOnATypo) {
  json svc = exampleService();
  auto plain = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_FALSE(plain->spec.mode.has_value()) << "no annotation: the box's default mode";
  svc["metadata"]["annotations"][std::string(kForwardingModeAnnotation)] = "tunnel";
  auto tunnel = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(tunnel) << tunnel.error();
  EXPECT_EQ(tunnel->spec.mode, conf::Mode::kTunnel);
  svc["metadata"]["annotations"][std::string(kForwardingModeAnnotation)] = "fullnat";
  EXPECT_EQ(translateService(svc, kNodes, nullptr)->spec.mode, conf::Mode::kFullNat);
  svc["metadata"]["annotations"][std::string(kForwardingModeAnnotation)] = "dsr";
  auto typo = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().find("metadata.annotations[nodegate.io/forwarding-mode]: 'dsr' is not one of fullnat, tunnel"),
            std::string::npos)
      << typo.error();
  auto kept = translateService(svc, kNodes, &tunnel->spec);
  ASSERT_TRUE(kept) << kept.error();
  EXPECT_EQ(kept->spec.mode, conf::Mode::kTunnel);
  ASSERT_EQ(kept->warnings.size(), 1u);
  EXPECT_NE(kept->warnings[0].find("the last good mode stays in force"), std::string::npos);
}

TEST(KubeService, SourceRangesFieldElseAnnotationAndFailClosed) {
  json svc = exampleService();
  svc["spec"].erase("loadBalancerSourceRanges");
  svc["metadata"]["annotations"][std::string(kSourceRangesAnnotation)] = " 10.0.0.0/8 , 192.0.2.7/32,2001:db8::/32";
  auto t = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->spec.source_ranges,
            (std::vector<conf::IpPrefix>{prefix("10.0.0.0/8"), prefix("192.0.2.7/32"), prefix("2001:db8::/32")}));
  // The field wins over the annotation.
  svc["spec"]["loadBalancerSourceRanges"] = json::array({"198.51.100.0/24"});
  EXPECT_EQ(translateService(svc, kNodes, nullptr)->spec.source_ranges.size(), 1u);

  // Unparsable: a new Service is not programmed; an existing one keeps its last good ranges.
  svc["spec"]["loadBalancerSourceRanges"] = json::array({"198.51.100.0/24", "not-a-cidr"});
  auto bad = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("spec.loadBalancerSourceRanges: 'not-a-cidr'"), std::string::npos) << bad.error();
  LoadBalancerSpec last = t->spec;
  auto kept = translateService(svc, kNodes, &last);
  ASSERT_TRUE(kept) << kept.error();
  EXPECT_EQ(kept->spec.source_ranges, last.source_ranges);
  ASSERT_EQ(kept->warnings.size(), 1u);

  // Only IPv6 ranges: kept as given. They do not open the IPv4 VIP to everyone: a VIP
  // admits only ranges of its family, none here (compiler_test: ...AdmitsNobody).
  svc["spec"]["loadBalancerSourceRanges"] = json::array({"2001:db8::/32"});
  auto v6_only = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(v6_only) << v6_only.error();
  EXPECT_EQ(v6_only->spec.source_ranges, std::vector<conf::IpPrefix>{prefix("2001:db8::/32")});
}

TEST(KubeService, RequestedAddressAndReadoption) {
  json svc = exampleService();
  svc["spec"]["loadBalancerIP"] = "203.0.113.20";
  auto t = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->spec.requested_ips, std::vector<conf::IpAddress>{ip("203.0.113.20")});
  EXPECT_FALSE(t->fallback);

  // The annotation: one per family; an address of a family the Service does not have is
  // ignored with a warning (one annotation often serves single- and dual-stack clusters).
  svc["spec"]["loadBalancerIP"] = "";
  svc["metadata"]["annotations"][std::string(kRequestedIpsAnnotation)] = "2001:db8::1, 203.0.113.21";
  t = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->spec.requested_ips, std::vector<conf::IpAddress>{ip("203.0.113.21")});
  ASSERT_EQ(t->warnings.size(), 1u);
  EXPECT_NE(t->warnings[0].find("2001:db8::1 is IPv6, not one of the Service's ipFamilies; ignored"), std::string::npos)
      << t->warnings[0];
  svc["spec"]["ipFamilies"] = json::array({"IPv6", "IPv4"});
  t = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->spec.families, (std::vector<conf::IpFamily>{conf::IpFamily::kIpv6, conf::IpFamily::kIpv4}));
  EXPECT_EQ(t->spec.requested_ips, (std::vector<conf::IpAddress>{ip("203.0.113.21"), ip("2001:db8::1")}));
  EXPECT_TRUE(t->warnings.empty());
  svc["metadata"]["annotations"][std::string(kRequestedIpsAnnotation)] = "2001:db8::1,2001:db8::2";
  auto two = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().find("two IPv6 addresses; at most one per family"), std::string::npos) << two.error();
  svc["spec"]["ipFamilies"] = json::array({"IPv4"});
  svc["metadata"]["annotations"][std::string(kRequestedIpsAnnotation)] = "bogus";
  auto bad = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("nodegate.io/load-balancer-ips"), std::string::npos) << bad.error();

  // No request: the address in the status is re-adopted, as a wish.
  svc = exampleService();
  svc["status"]["loadBalancer"]["ingress"] = json::parse(R"([{"ip":"203.0.113.30","ipMode":"Proxy"}])");
  t = translateService(svc, kNodes, nullptr);
  EXPECT_EQ(t->spec.requested_ips, std::vector<conf::IpAddress>{ip("203.0.113.30")});
  EXPECT_TRUE(t->fallback);
  // Dual stack: each family's status address is re-adopted; one of a family the Service
  // no longer has is let go.
  svc["spec"]["ipFamilies"] = json::array({"IPv4", "IPv6"});
  svc["status"]["loadBalancer"]["ingress"] =
      json::parse(R"([{"ip":"203.0.113.30"},{"ip":"2001:db8::30"},{"ip":"2001:db8::31"}])");
  t = translateService(svc, kNodes, nullptr);
  EXPECT_EQ(t->spec.requested_ips, (std::vector<conf::IpAddress>{ip("203.0.113.30"), ip("2001:db8::30")}));
  svc["spec"]["ipFamilies"] = json::array({"IPv6"});
  t = translateService(svc, kNodes, nullptr);
  EXPECT_EQ(t->spec.requested_ips, std::vector<conf::IpAddress>{ip("2001:db8::30")});
  svc["spec"]["ipFamilies"] = json::array({"IPv6", "IPX"});
  EXPECT_FALSE(translateService(svc, kNodes, nullptr));
}

TEST(KubeService, FieldErrorsNameTheField) {
  json svc = exampleService();
  svc["spec"]["healthCheckNodePort"] = 0;
  auto e = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("spec.healthCheckNodePort"), std::string::npos) << e.error();

  svc = exampleService();
  svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] = 86401;
  e = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("timeoutSeconds"), std::string::npos) << e.error();

  svc = exampleService();
  svc["spec"]["ipFamilies"] = json::array({"IPv6"});
  auto v6 = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(v6) << v6.error();
  EXPECT_EQ(v6->spec.families, std::vector<conf::IpFamily>{conf::IpFamily::kIpv6});
  svc["spec"]["ipFamilies"] = json::array({"IPv6", "IPv4"});
  auto dual = translateService(svc, kNodes, nullptr);
  ASSERT_TRUE(dual) << dual.error();
  EXPECT_TRUE(dual->warnings.empty());
  svc["spec"]["ipFamilies"] = json::array({"IPv4", "IPv4"});
  auto twice = translateService(svc, kNodes, nullptr);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().find("spec.ipFamilies"), std::string::npos) << twice.error();
  svc["spec"].erase("ipFamilies");  // an API server before 1.20: IPv4
  EXPECT_EQ(translateService(svc, kNodes, nullptr)->spec.families, std::vector<conf::IpFamily>{conf::IpFamily::kIpv4});
}

TEST(KubeService, KeysAndFinalizers) {
  json svc = exampleService();
  EXPECT_EQ(objectKey(svc), "shop/web");
  EXPECT_EQ(objectKey(exampleNode()), "worker-1");
  EXPECT_EQ(objectKey(json::object()), "");
  EXPECT_FALSE(hasFinalizer(svc, "nodegate.io/cleanup"));
  svc["metadata"]["finalizers"] = json::array({"other", "nodegate.io/cleanup"});
  EXPECT_TRUE(hasFinalizer(svc, "nodegate.io/cleanup"));
  EXPECT_TRUE(currentIngress(svc).is_null());
}

}  // namespace
}  // namespace ng::control
