#include "control/load_balancers.h"

#include "control/status_view.h"

#include <algorithm>
#include <set>

namespace ng::control {
namespace {

using nlohmann::json;

// Kubernetes object names: DNS-1123 labels (lower case alphanumerics and '-', 1..63).
bool isDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::ranges::all_of(s, [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// Field readers: each returns false after setting `error` to "FIELD: problem".
struct Reader {
  std::string error;

  bool fail(const std::string& field, const std::string& what) {
    error = field + ": " + what;
    return false;
  }
  bool string(const json& j, const std::string& field, std::string& out) {
    if (!j.is_string()) return fail(field, "expected a string");
    out = j.get<std::string>();
    return true;
  }
  bool uint(const json& j, const std::string& field, uint64_t lo, uint64_t hi, uint64_t& out) {
    if (!j.is_number_integer() || (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0) ||
        j.get<uint64_t>() < lo || j.get<uint64_t>() > hi) {
      return fail(field, j.dump() + " is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    out = j.get<uint64_t>();
    return true;
  }
  // A unicast host address of either family (the rule of conf/ip_address.h).
  bool ip(const json& j, const std::string& field, conf::IpAddress& out) {
    std::string text;
    if (!string(j, field, text)) return false;
    auto address = conf::IpAddress::parse(text);
    if (!address) return fail(field, "'" + text + "' is not an IP address");
    if (!address->isUnicastHost()) {
      return fail(field, "'" + text + "' is not a unicast host address (multicast, loopback, unspecified, "
                         "link-local and reserved addresses are refused)");
    }
    out = *address;
    return true;
  }
  // One address, or an array of at most one per family; sorted IPv4 first.
  bool ipPerFamily(const json& j, const std::string& field, std::vector<conf::IpAddress>& out) {
    out.clear();
    if (!j.is_array()) {
      conf::IpAddress a;
      if (!ip(j, field, a)) return false;
      out.push_back(a);
      return true;
    }
    if (j.empty() || j.size() > 2) return fail(field, "expected one address per family (1 or 2), got " + std::to_string(j.size()));
    for (size_t i = 0; i < j.size(); ++i) {
      conf::IpAddress a;
      if (!ip(j[i], field + "[" + std::to_string(i) + "]", a)) return false;
      if (!out.empty() && out.front().family() == a.family()) {
        return fail(field + "[" + std::to_string(i) + "]",
                    std::string("a second ") + conf::ipFamilyName(a.family()) + " address; at most one per family");
      }
      out.push_back(a);
    }
    std::ranges::sort(out);
    return true;
  }
  bool known(const json& object, const std::string& where, std::initializer_list<const char*> keys) {
    for (const auto& [key, value] : object.items()) {
      if (std::ranges::find_if(keys, [&](const char* k) { return key == k; }) == keys.end()) {
        return fail(where.empty() ? key : where + "." + key, "unknown field");
      }
    }
    return true;
  }
};

}  // namespace

std::optional<std::string> LbPort::error() const {
  if (protocol == "SCTP") return "protocol SCTP is not supported (TCP and UDP are)";
  if (node_port == 0) return "no nodePort (allocateLoadBalancerNodePorts: false); NodeGate balances to NodePorts";
  return std::nullopt;
}

std::expected<LoadBalancerSpec, std::string> parseLoadBalancerSpec(const json& body, const std::string& namespace_name,
                                                                   const std::string& name) {
  Reader r;
  auto failed = [&r] { return std::unexpected(r.error); };
  if (!isDnsLabel(namespace_name)) return std::unexpected("namespace '" + namespace_name + "' is not a DNS label");
  if (!isDnsLabel(name)) return std::unexpected("name '" + name + "' is not a DNS label");
  if (!body.is_object()) return std::unexpected(std::string("body: expected a JSON object"));
  if (!r.known(body, "", {"namespace", "name", "ports", "nodes", "externalTrafficPolicy", "healthCheckNodePort",
                          "sessionAffinity", "sessionAffinityTimeoutSeconds", "loadBalancerSourceRanges",
                          "loadBalancerIP", "loadBalancerIPs", "sharingKey", "ipFamilies", "mode"})) {
    return failed();
  }
  LoadBalancerSpec spec{.namespace_name = namespace_name, .name = name};
  for (const char* key : {"namespace", "name"}) {
    if (!body.contains(key)) continue;
    std::string value;
    if (!r.string(body[key], key, value)) return failed();
    const std::string& want = std::string(key) == "namespace" ? namespace_name : name;
    if (value != want) return std::unexpected(std::string(key) + ": '" + value + "' does not match the path ('" + want + "')");
  }

  if (!body.contains("ports") || !body["ports"].is_array() || body["ports"].empty()) {
    return std::unexpected(std::string("ports: expected a non-empty array"));
  }
  std::set<std::pair<std::string, uint16_t>> seen_ports;
  for (size_t i = 0; i < body["ports"].size(); ++i) {
    const json& p = body["ports"][i];
    const std::string at = "ports[" + std::to_string(i) + "]";
    if (!p.is_object()) return std::unexpected(at + ": expected an object");
    if (!r.known(p, at, {"name", "protocol", "port", "nodePort"})) return failed();
    LbPort port{.protocol = "TCP"};
    uint64_t value = 0;
    if (p.contains("name") && !r.string(p["name"], at + ".name", port.name)) return failed();
    if (p.contains("protocol") && !r.string(p["protocol"], at + ".protocol", port.protocol)) return failed();
    if (port.protocol != "TCP" && port.protocol != "UDP" && port.protocol != "SCTP") {
      return std::unexpected(at + ".protocol: '" + port.protocol + "' is not one of TCP, UDP, SCTP");
    }
    if (!p.contains("port")) return std::unexpected(at + ".port: required");
    if (!r.uint(p["port"], at + ".port", 1, 65535, value)) return failed();
    port.port = static_cast<uint16_t>(value);
    if (p.contains("nodePort")) {
      if (!r.uint(p["nodePort"], at + ".nodePort", 0, 65535, value)) return failed();
      port.node_port = static_cast<uint16_t>(value);
    }
    if (!seen_ports.emplace(port.protocol, port.port).second) {
      return std::unexpected(at + ": port " + std::to_string(port.port) + "/" + port.protocol + " is listed twice");
    }
    spec.ports.push_back(std::move(port));
  }

  if (body.contains("nodes")) {
    if (!body["nodes"].is_array()) return std::unexpected(std::string("nodes: expected an array"));
    std::set<std::string> names;
    std::set<conf::IpAddress> addresses;
    for (size_t i = 0; i < body["nodes"].size(); ++i) {
      const json& n = body["nodes"][i];
      const std::string at = "nodes[" + std::to_string(i) + "]";
      if (!n.is_object()) return std::unexpected(at + ": expected an object {name, address}");
      if (!r.known(n, at, {"name", "address", "addresses"})) return failed();
      LbNode node;
      if (!n.contains("name") || !r.string(n["name"], at + ".name", node.name) || node.name.empty()) {
        return std::unexpected(r.error.empty() ? at + ".name: required" : r.error);
      }
      if (n.contains("address") == n.contains("addresses")) {
        return std::unexpected(at + ": expected address (one) or addresses (one per family), exactly one of them");
      }
      const std::string field = at + (n.contains("address") ? ".address" : ".addresses");
      const json& value = n.contains("address") ? n["address"] : n["addresses"];
      if (n.contains("address") && value.is_array()) return std::unexpected(field + ": expected a string");
      if (n.contains("addresses") && !value.is_array()) return std::unexpected(field + ": expected an array");
      if (!r.ipPerFamily(value, field, node.addresses)) return failed();
      if (!names.insert(node.name).second) return std::unexpected(at + ".name: '" + node.name + "' is listed twice");
      for (const conf::IpAddress& a : node.addresses) {
        if (!addresses.insert(a).second) return std::unexpected(field + ": " + a.str() + " is listed twice");
      }
      spec.nodes.push_back(std::move(node));
    }
  }

  if (body.contains("externalTrafficPolicy")) {
    std::string policy;
    if (!r.string(body["externalTrafficPolicy"], "externalTrafficPolicy", policy)) return failed();
    if (policy == "Local") {
      spec.policy = conf::TrafficPolicy::kLocal;
    } else if (policy != "Cluster") {
      return std::unexpected("externalTrafficPolicy: '" + policy + "' is not one of Cluster, Local");
    }
  }
  if (body.contains("healthCheckNodePort")) {
    uint64_t value = 0;
    if (!r.uint(body["healthCheckNodePort"], "healthCheckNodePort", 0, 65535, value)) return failed();
    spec.health_check_node_port = static_cast<uint16_t>(value);
  }
  if (spec.policy == conf::TrafficPolicy::kLocal && spec.health_check_node_port == 0) {
    return std::unexpected(std::string("healthCheckNodePort: required with externalTrafficPolicy Local"));
  }
  if (body.contains("sessionAffinity")) {
    std::string affinity;
    if (!r.string(body["sessionAffinity"], "sessionAffinity", affinity)) return failed();
    if (affinity != "None" && affinity != "ClientIP") {
      return std::unexpected("sessionAffinity: '" + affinity + "' is not one of None, ClientIP");
    }
    spec.client_ip_affinity = affinity == "ClientIP";
  }
  if (body.contains("sessionAffinityTimeoutSeconds")) {
    uint64_t value = 0;
    if (!r.uint(body["sessionAffinityTimeoutSeconds"], "sessionAffinityTimeoutSeconds", 1, 86400, value)) {
      return failed();
    }
    spec.affinity_timeout_seconds = static_cast<uint32_t>(value);
  }
  if (body.contains("loadBalancerSourceRanges")) {
    const json& ranges = body["loadBalancerSourceRanges"];
    if (!ranges.is_array()) return std::unexpected(std::string("loadBalancerSourceRanges: expected an array"));
    for (size_t i = 0; i < ranges.size(); ++i) {
      const std::string at = "loadBalancerSourceRanges[" + std::to_string(i) + "]";
      std::string text;
      if (!r.string(ranges[i], at, text)) return failed();
      auto prefix = conf::IpPrefix::parse(text);
      if (!prefix) return std::unexpected(at + ": '" + text + "' is not an IP prefix (address/length)");
      // As Kubernetes' validation: a range with host bits set is refused, not guessed at.
      if (prefix->hasHostBits()) {
        return std::unexpected(at + ": '" + text + "' has host bits set (did you mean " + prefix->network().str() + "?)");
      }
      if (std::ranges::find(spec.source_ranges, *prefix) == spec.source_ranges.end()) spec.source_ranges.push_back(*prefix);
    }
  }
  if (body.contains("loadBalancerIP") && !body["loadBalancerIP"].is_null()) {
    std::string text;
    if (!r.string(body["loadBalancerIP"], "loadBalancerIP", text)) return failed();
    if (!text.empty()) {
      conf::IpAddress address;
      if (!r.ip(body["loadBalancerIP"], "loadBalancerIP", address)) return failed();
      spec.requested_ips.push_back(address);
    }
  }
  if (body.contains("loadBalancerIPs") && !body["loadBalancerIPs"].is_null()) {
    if (!spec.requested_ips.empty()) {
      return std::unexpected(std::string("loadBalancerIPs: set either loadBalancerIP or loadBalancerIPs, not both"));
    }
    if (!body["loadBalancerIPs"].is_array()) return std::unexpected(std::string("loadBalancerIPs: expected an array"));
    if (!r.ipPerFamily(body["loadBalancerIPs"], "loadBalancerIPs", spec.requested_ips)) return failed();
  }
  if (body.contains("sharingKey") && !r.string(body["sharingKey"], "sharingKey", spec.sharing_key)) return failed();
  if (body.contains("mode") && !body["mode"].is_null()) {
    std::string mode;
    if (!r.string(body["mode"], "mode", mode)) return failed();
    if (mode == "fullnat") {
      spec.mode = conf::Mode::kFullNat;
    } else if (mode == "tunnel") {
      spec.mode = conf::Mode::kTunnel;
    } else {
      return std::unexpected("mode: '" + mode + "' is not one of fullnat, tunnel");
    }
  }
  if (body.contains("ipFamilies")) {
    const json& families = body["ipFamilies"];
    if (!families.is_array() || families.empty() || families.size() > 2) {
      return std::unexpected(std::string("ipFamilies: expected [\"IPv4\"], [\"IPv6\"] or both, primary first"));
    }
    spec.families.clear();
    for (size_t i = 0; i < families.size(); ++i) {
      const json& f = families[i];
      const std::string at = "ipFamilies[" + std::to_string(i) + "]";
      if (f != "IPv4" && f != "IPv6") return std::unexpected(at + ": " + f.dump() + " is not one of IPv4, IPv6");
      const conf::IpFamily family = f == "IPv4" ? conf::IpFamily::kIpv4 : conf::IpFamily::kIpv6;
      if (std::ranges::find(spec.families, family) != spec.families.end()) {
        return std::unexpected(at + ": " + f.dump() + " is listed twice");
      }
      spec.families.push_back(family);
    }
  } else if (!spec.requested_ips.empty()) {
    // No ipFamilies: the requested addresses say which (Kubernetes would default to the
    // cluster's primary family; a box cannot know it).
    spec.families.clear();
    for (const conf::IpAddress& a : spec.requested_ips) spec.families.push_back(a.family());
  }
  for (const conf::IpAddress& a : spec.requested_ips) {
    if (std::ranges::find(spec.families, a.family()) == spec.families.end()) {
      return std::unexpected(std::string(body.contains("loadBalancerIPs") ? "loadBalancerIPs" : "loadBalancerIP") + ": " +
                             a.str() + " is " + conf::ipFamilyName(a.family()) + ", not one of the ipFamilies");
    }
  }
  return spec;
}

json specJson(const LoadBalancerSpec& spec) {
  json ports = json::array();
  for (const LbPort& p : spec.ports) {
    ports.push_back(json{{"name", p.name}, {"protocol", p.protocol}, {"port", p.port}, {"nodePort", p.node_port}});
  }
  json nodes = json::array();
  for (const LbNode& n : spec.nodes) {
    if (n.addresses.size() == 1) {
      nodes.push_back(json{{"name", n.name}, {"address", n.addresses[0].str()}});
    } else {
      json list = json::array();
      for (const conf::IpAddress& a : n.addresses) list.push_back(a.str());
      nodes.push_back(json{{"name", n.name}, {"addresses", std::move(list)}});
    }
  }
  json ranges = json::array();
  for (const conf::IpPrefix& p : spec.source_ranges) ranges.push_back(p.str());
  json families = json::array();
  for (conf::IpFamily f : spec.families) families.push_back(conf::ipFamilyName(f));
  json j{{"namespace", spec.namespace_name},
         {"name", spec.name},
         {"ports", std::move(ports)},
         {"nodes", std::move(nodes)},
         {"externalTrafficPolicy", spec.policy == conf::TrafficPolicy::kLocal ? "Local" : "Cluster"},
         {"healthCheckNodePort", spec.health_check_node_port},
         {"sessionAffinity", spec.client_ip_affinity ? "ClientIP" : "None"},
         {"sessionAffinityTimeoutSeconds", spec.affinity_timeout_seconds},
         {"loadBalancerSourceRanges", std::move(ranges)},
         {"ipFamilies", std::move(families)},
         {"sharingKey", spec.sharing_key}};
  if (!spec.requested_ips.empty()) {
    json list = json::array();
    for (const conf::IpAddress& a : spec.requested_ips) list.push_back(a.str());
    j["loadBalancerIPs"] = std::move(list);
  }
  if (spec.mode) j["mode"] = modeName(*spec.mode);
  return j;
}

std::optional<conf::IpAddress> LoadBalancerSpec::requested(conf::IpFamily family) const {
  for (const conf::IpAddress& a : requested_ips) {
    if (a.family() == family) return a;
  }
  return std::nullopt;
}

LoadBalancerRegistry::LoadBalancerRegistry(std::string state_path) : file_(std::move(state_path)) {}

namespace {

AllocationRequest allocationFor(const LoadBalancerSpec& spec, conf::IpFamily family) {
  AllocationRequest request{.owner = spec.id(), .family = family, .requested = spec.requested(family),
                            .sharing_key = spec.sharing_key};
  for (const LbPort& p : spec.ports) {
    if (p.error()) continue;
    request.ports.emplace_back(p.protocol == "TCP" ? conf::Protocol::kTcp : conf::Protocol::kUdp, p.port);
  }
  return request;
}

}  // namespace

std::expected<size_t, std::string> LoadBalancerRegistry::load(const conf::Config& config) {
  configure(config);
  auto data = file_.read();
  if (!data) return std::unexpected(data.error());
  if (!*data) return 0;
  const json& doc = **data;
  if (!doc.contains("load_balancers") || !doc["load_balancers"].is_array()) {
    return std::unexpected(file_.path() + ": no load_balancers array");
  }
  std::map<std::string, Entry> loaded;
  for (const json& item : doc["load_balancers"]) {
    if (!item.is_object() || !item.contains("spec") || !(item.contains("ips") || item.contains("ip")) ||
        !item["spec"].is_object()) {
      return std::unexpected(file_.path() + ": an entry without spec and ips");
    }
    const json& spec_json = item["spec"];
    auto spec = parseLoadBalancerSpec(spec_json, spec_json.value("namespace", ""), spec_json.value("name", ""));
    if (!spec) return std::unexpected(file_.path() + ": " + spec_json.value("namespace", "?") + "/" +
                                      spec_json.value("name", "?") + ": " + spec.error());
    // "ips": one per spec family, in its order; "ip": the IPv4-only files written before
    // dual stack.
    const json ips = item.contains("ips") ? item["ips"] : json::array({item["ip"]});
    std::vector<conf::IpAddress> addresses;
    for (const json& ip : ips.is_array() ? ips : json::array()) {
      auto address = ip.is_string() ? conf::IpAddress::parse(ip.get<std::string>()) : std::nullopt;
      if (!address) return std::unexpected(file_.path() + ": " + spec->id() + ": bad ip " + ip.dump());
      addresses.push_back(*address);
    }
    bool matches = addresses.size() == spec->families.size();
    for (size_t i = 0; matches && i < addresses.size(); ++i) matches = addresses[i].family() == spec->families[i];
    if (!matches) {
      return std::unexpected(file_.path() + ": " + spec->id() + ": ips " + ips.dump() + " do not match ipFamilies " +
                             specJson(*spec)["ipFamilies"].dump());
    }
    for (const conf::IpAddress& a : addresses) ipam_.adopt(allocationFor(*spec, a.family()), a);
    std::string id = spec->id();  // before the spec is moved into the entry
    loaded.emplace(std::move(id), Entry{.spec = std::move(*spec), .addresses = std::move(addresses)});
  }
  balancers_ = std::move(loaded);
  return balancers_.size();
}

void LoadBalancerRegistry::configure(const conf::Config& config) {
  config_ = config;
  ipam_.setPools(config.pools);
  std::map<conf::IpAddress, std::string> statics;
  for (const conf::ServiceConfig& s : config.services) {
    for (const conf::IpAddress& vip : s.vips) statics.emplace(vip, s.namespace_name + "/" + s.name);
  }
  ipam_.setStatic(std::move(statics));
}

json LoadBalancerRegistry::statusJson(const Entry& e) const {
  json ports = json::array();
  for (const LbPort& p : e.spec.ports) {
    json port{{"port", p.port}, {"protocol", p.protocol}};
    if (auto why = p.error()) port["error"] = *why;
    ports.push_back(std::move(port));
  }
  const char* ip_mode = ipModeName(e.spec.mode.value_or(config_.dataplane.mode));
  json ingress = json::array();
  for (const conf::IpAddress& a : e.addresses) {
    ingress.push_back(json{{"ip", a.str()}, {"ipMode", ip_mode}, {"ports", ports}});
  }
  json body{{"namespace", e.spec.namespace_name},
            {"name", e.spec.name},
            {"ingress", std::move(ingress)},
            {"spec", specJson(e.spec)}};
  for (const conf::IpAddress& a : e.addresses) {
    if (!ipam_.poolOf(a) && e.spec.requested(a.family()) != a) {
      body["warning"] = a.str() + " is no longer in any pool; it stays until the load balancer is deleted";
    }
  }
  if (e.spec.nodes.empty()) body["warning"] = "no nodes: the address is allocated but nothing is programmed";
  return body;
}

std::string LoadBalancerRegistry::conflicts(const LoadBalancerSpec& spec, bool api_only) const {
  // A node name means one address everywhere: in the config file and in every load balancer.
  auto text = [](const std::vector<conf::IpAddress>& list) {
    std::string out;
    for (const conf::IpAddress& a : list) out += (out.empty() ? "" : ", ") + a.str();
    return out;
  };
  // Tunnel mode over IPv6 (IPv6-in-IPv6) needs an outer IPv6 source: dataplane.tunnel.source6
  // or the internal port's address6 (each family tunnels in its own family).
  if (spec.mode.value_or(config_.dataplane.mode) == conf::Mode::kTunnel &&
      std::ranges::find(spec.families, conf::IpFamily::kIpv6) != spec.families.end() &&
      !config_.dataplane.tunnel.source6) {
    const conf::PortConfig* internal = config_.port(conf::PortRole::kInternal);
    if (internal == nullptr || !internal->address6) {
      return "ipFamilies: IPv6 in tunnel mode needs an IPv6 outer source: the box has no dataplane.tunnel.source6 "
             "and no address6 on its internal port";
    }
  }
  std::map<std::string, std::vector<conf::IpAddress>> known;
  for (const conf::NodeConfig& n : config_.nodes) known.emplace(n.name, n.addresses);
  for (const auto& [id, e] : balancers_) {
    if (id == spec.id() || (api_only && e.source != LbSource::kApi)) continue;
    for (const LbNode& n : e.spec.nodes) known.emplace(n.name, n.addresses);
  }
  std::set<conf::IpAddress> own;
  for (const conf::PortConfig& p : config_.dataplane.ports) {
    own.insert(p.address.address);
    if (p.address6) own.insert(p.address6->address);
  }
  for (const conf::IpAddress& a : config_.dataplane.snat.addresses) own.insert(a);
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const LbNode& n = spec.nodes[i];
    const std::string at = "nodes[" + std::to_string(i) + "]";
    if (auto it = known.find(n.name); it != known.end() && it->second != n.addresses) {
      return at + ": node '" + n.name + "' has address " + text(it->second) + " elsewhere, not " + text(n.addresses);
    }
    for (const conf::IpAddress& a : n.addresses) {
      if (own.contains(a)) return at + ".address: " + a.str() + " is an address of the box";
    }
  }
  return "";
}

std::expected<void, std::string> LoadBalancerRegistry::commit(std::map<std::string, Entry> next) {
  json list = json::array();
  for (const auto& [id, e] : next) {
    if (e.source != LbSource::kApi) continue;
    json ips = json::array();
    for (const conf::IpAddress& a : e.addresses) ips.push_back(a.str());
    list.push_back(json{{"spec", specJson(e.spec)}, {"ips", std::move(ips)}});
  }
  if (auto written = file_.write(json{{"load_balancers", std::move(list)}}); !written) {
    return std::unexpected(written.error());
  }
  balancers_ = std::move(next);
  return {};
}

std::optional<LoadBalancerRegistry::Reply> LoadBalancerRegistry::ownedByOther(const std::string& id,
                                                                            LbSource source) const {
  auto it = balancers_.find(id);
  if (it == balancers_.end() || it->second.source == source) return std::nullopt;
  return Reply{409,
               json{{"error", id + (it->second.source == LbSource::kApi
                                         ? " is a load balancer declared through the REST API"
                                         : " is managed by the Kubernetes controller; change the Service instead")}},
               false};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::store(LoadBalancerSpec spec) {
  if (auto other = ownedByOther(spec.id(), LbSource::kApi)) return *other;
  if (std::string why = conflicts(spec); !why.empty()) return {409, json{{"error", why}}, false};
  const std::string id = spec.id();
  const Ipam before = ipam_;
  auto addresses = allocate(spec);
  if (!addresses) return {409, json{{"error", addresses.error()}}, false};
  auto next = balancers_;
  const auto old = next.find(id);
  const bool same =
      old != next.end() && specJson(old->second.spec) == specJson(spec) && old->second.addresses == *addresses;
  next[id] = Entry{.spec = std::move(spec), .addresses = std::move(*addresses)};
  if (!same) {
    if (auto done = commit(std::move(next)); !done) {
      ipam_ = before;  // nothing changed
      return {500, json{{"error", "state not saved, nothing changed: " + done.error()}}, false};
    }
  }
  return {200, statusJson(balancers_.at(id)), !same};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::ensure(const json& body, const std::string& namespace_name,
                                                         const std::string& name) {
  auto spec = parseLoadBalancerSpec(body, namespace_name, name);
  if (!spec) return {400, json{{"error", spec.error()}}, false};
  return store(std::move(*spec));
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::updateNodes(const json& body, const std::string& namespace_name,
                                                              const std::string& name) {
  auto it = balancers_.find(namespace_name + "/" + name);
  if (it == balancers_.end()) {
    return {404, json{{"error", "no load balancer " + namespace_name + "/" + name}}, false};
  }
  if (auto other = ownedByOther(it->first, LbSource::kApi)) return *other;
  if (!body.is_object() || !body.contains("nodes") || body.size() != 1) {
    return {400, json{{"error", "body: expected {\"nodes\": [...]} only"}}, false};
  }
  json full = specJson(it->second.spec);
  full["nodes"] = body["nodes"];
  auto spec = parseLoadBalancerSpec(full, namespace_name, name);
  if (!spec) return {400, json{{"error", spec.error()}}, false};
  return store(std::move(*spec));
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::get(const std::string& namespace_name, const std::string& name) const {
  auto it = balancers_.find(namespace_name + "/" + name);
  if (it == balancers_.end()) {
    return {404, json{{"error", "no load balancer " + namespace_name + "/" + name}}, false};
  }
  return {200, statusJson(it->second), false};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::remove(const std::string& namespace_name, const std::string& name) {
  const std::string id = namespace_name + "/" + name;
  if (!balancers_.contains(id)) {
    return {200, json{{"namespace", namespace_name}, {"name", name}, {"deleted", false}}, false};
  }
  if (auto other = ownedByOther(id, LbSource::kApi)) return *other;
  auto next = balancers_;
  next.erase(id);
  if (auto done = commit(std::move(next)); !done) {
    return {500, json{{"error", "state not saved, nothing changed: " + done.error()}}, false};
  }
  ipam_.release(id);
  return {200, json{{"namespace", namespace_name}, {"name", name}, {"deleted", true}}, true};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::list() const {
  json items = json::array();
  for (const auto& [id, e] : balancers_) items.push_back(statusJson(e));
  return {200, json{{"load_balancers", std::move(items)}}, false};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::ensureKubernetes(LoadBalancerSpec spec, bool fallback) {
  const std::string id = spec.id();
  if (auto other = ownedByOther(id, LbSource::kKubernetes)) return *other;
  if (std::string why = conflicts(spec, /*api_only=*/true); !why.empty()) return {409, json{{"error", why}}, false};
  auto addresses = allocate(spec);
  if (!addresses && fallback && !spec.requested_ips.empty()) {
    spec.requested_ips.clear();
    addresses = allocate(spec);
  }
  if (!addresses) return {409, json{{"error", addresses.error()}}, false};
  // No copy of the whole set and no file: a cold start ensures thousands of these.
  auto [it, fresh] = balancers_.try_emplace(id);
  Entry& e = it->second;
  const bool same = !fresh && e.addresses == *addresses && e.spec == spec;
  e = Entry{.spec = std::move(spec), .addresses = std::move(*addresses), .source = LbSource::kKubernetes};
  return {200, statusJson(e), !same};
}

LoadBalancerRegistry::Reply LoadBalancerRegistry::removeKubernetes(const std::string& id) {
  auto it = balancers_.find(id);
  if (it == balancers_.end()) return {200, json{{"id", id}, {"deleted", false}}, false};
  if (auto other = ownedByOther(id, LbSource::kKubernetes)) return *other;
  balancers_.erase(it);
  ipam_.release(id);
  return {200, json{{"id", id}, {"deleted", true}}, true};
}

std::vector<std::string> LoadBalancerRegistry::kubernetesIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, e] : balancers_) {
    if (e.source == LbSource::kKubernetes) ids.push_back(id);
  }
  return ids;
}

std::vector<conf::IpAddress> LoadBalancerRegistry::addressesOf(const std::string& id) const {
  auto it = balancers_.find(id);
  if (it == balancers_.end()) return {};
  return it->second.addresses;
}

std::expected<std::vector<conf::IpAddress>, std::string> LoadBalancerRegistry::allocate(const LoadBalancerSpec& spec) {
  const Ipam before = ipam_;
  std::vector<conf::IpAddress> out;
  for (conf::IpFamily family : spec.families) {
    auto address = ipam_.allocate(allocationFor(spec, family));
    if (!address) {
      ipam_ = before;
      const std::string field = spec.requested(family) ? (spec.requested_ips.size() > 1 ? "loadBalancerIPs" : "loadBalancerIP")
                                                       : std::string("address (") + conf::ipFamilyName(family) + ")";
      return std::unexpected(field + ": " + address.error());
    }
    out.push_back(*address);
  }
  // A family the spec no longer has (dual stack -> single) gives its address back.
  for (conf::IpFamily family : {conf::IpFamily::kIpv4, conf::IpFamily::kIpv6}) {
    if (std::ranges::find(spec.families, family) == spec.families.end()) ipam_.release(spec.id(), family);
  }
  return out;
}

std::optional<LbSource> LoadBalancerRegistry::sourceOf(const std::string& id) const {
  auto it = balancers_.find(id);
  if (it == balancers_.end()) return std::nullopt;
  return it->second.source;
}

std::string LoadBalancerRegistry::conflictsWith(const conf::Config& config) const {
  for (size_t i = 0; i < config.services.size(); ++i) {
    const conf::ServiceConfig& s = config.services[i];
    for (const auto& [id, e] : balancers_) {
      for (const conf::IpAddress& vip : s.vips) {
        if (std::ranges::find(e.addresses, vip) != e.addresses.end()) {
          return config.source + ": services.[" + std::to_string(i) + "].vip: " + vip.str() +
                 " is allocated to load balancer " + id + " (declared through the API)";
        }
      }
    }
  }
  return "";
}

conf::Config LoadBalancerRegistry::merged(const conf::Config& base) const {
  conf::Config out = base;
  std::set<std::string> names;
  for (const conf::NodeConfig& n : out.nodes) names.insert(n.name);
  for (const auto& [id, e] : balancers_) {
    if (e.spec.nodes.empty()) continue;  // allocated, nothing to program
    for (const LbNode& n : e.spec.nodes) {
      if (names.insert(n.name).second) out.nodes.push_back(conf::NodeConfig{.name = n.name, .addresses = n.addresses});
    }
    conf::ServiceConfig svc{.namespace_name = e.spec.namespace_name, .name = e.spec.name, .vips = e.addresses};
    for (const LbPort& p : e.spec.ports) {
      if (p.error()) continue;
      svc.ports.push_back(conf::ServicePortConfig{
          .name = p.name, .protocol = p.protocol == "TCP" ? conf::Protocol::kTcp : conf::Protocol::kUdp,
          .port = p.port, .node_port = p.node_port});
    }
    if (svc.ports.empty()) continue;
    svc.external_traffic_policy = e.spec.policy;
    svc.health_check_node_port = e.spec.health_check_node_port;
    svc.source_ranges = e.spec.source_ranges;
    svc.session_affinity = e.spec.client_ip_affinity ? conf::SessionAffinity::kClientIp : conf::SessionAffinity::kNone;
    svc.session_affinity_timeout = e.spec.affinity_timeout_seconds;
    svc.mode = e.spec.mode;
    for (const LbNode& n : e.spec.nodes) svc.node_names.push_back(n.name);
    out.services.push_back(std::move(svc));
  }
  return out;
}

}  // namespace ng::control
