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
  bool ipv4(const json& j, const std::string& field, uint32_t& out) {
    std::string text;
    if (!string(j, field, text)) return false;
    auto address = conf::parseIpv4(text);
    if (!address) {
      return fail(field, "'" + text + "' is not an IPv4 address" +
                             (text.find(':') != std::string::npos ? " (IPv6 is not supported yet)" : ""));
    }
    out = *address;
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
                          "loadBalancerIP", "sharingKey", "ipFamilies", "mode"})) {
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
    std::set<uint32_t> addresses;
    for (size_t i = 0; i < body["nodes"].size(); ++i) {
      const json& n = body["nodes"][i];
      const std::string at = "nodes[" + std::to_string(i) + "]";
      if (!n.is_object()) return std::unexpected(at + ": expected an object {name, address}");
      if (!r.known(n, at, {"name", "address"})) return failed();
      LbNode node;
      if (!n.contains("name") || !r.string(n["name"], at + ".name", node.name) || node.name.empty()) {
        return std::unexpected(r.error.empty() ? at + ".name: required" : r.error);
      }
      if (!n.contains("address")) return std::unexpected(at + ".address: required");
      if (!r.ipv4(n["address"], at + ".address", node.address)) return failed();
      if (!names.insert(node.name).second) return std::unexpected(at + ".name: '" + node.name + "' is listed twice");
      if (!addresses.insert(node.address).second) {
        return std::unexpected(at + ".address: " + conf::formatIpv4(node.address) + " is listed twice");
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
      auto prefix = conf::parseIpv4Prefix(text);
      if (!prefix) {
        return std::unexpected(at + ": '" + text + "' is not an IPv4 prefix" +
                               (text.find(':') != std::string::npos ? " (IPv6 is not supported yet)" : ""));
      }
      spec.source_ranges.push_back(*prefix);
    }
  }
  if (body.contains("loadBalancerIP") && !body["loadBalancerIP"].is_null()) {
    std::string text;
    if (!r.string(body["loadBalancerIP"], "loadBalancerIP", text)) return failed();
    if (!text.empty()) {
      uint32_t address = 0;
      if (!r.ipv4(body["loadBalancerIP"], "loadBalancerIP", address)) return failed();
      spec.requested_ip = address;
    }
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
    if (!families.is_array()) return std::unexpected(std::string("ipFamilies: expected an array"));
    for (const json& f : families) {
      if (f != "IPv4") return std::unexpected("ipFamilies: " + f.dump() + " is not supported yet (IPv4 only)");
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
  for (const LbNode& n : spec.nodes) nodes.push_back(json{{"name", n.name}, {"address", conf::formatIpv4(n.address)}});
  json ranges = json::array();
  for (const conf::Ipv4Prefix& p : spec.source_ranges) {
    ranges.push_back(conf::formatIpv4(p.address) + "/" + std::to_string(p.length));
  }
  json j{{"namespace", spec.namespace_name},
         {"name", spec.name},
         {"ports", std::move(ports)},
         {"nodes", std::move(nodes)},
         {"externalTrafficPolicy", spec.policy == conf::TrafficPolicy::kLocal ? "Local" : "Cluster"},
         {"healthCheckNodePort", spec.health_check_node_port},
         {"sessionAffinity", spec.client_ip_affinity ? "ClientIP" : "None"},
         {"sessionAffinityTimeoutSeconds", spec.affinity_timeout_seconds},
         {"loadBalancerSourceRanges", std::move(ranges)},
         {"sharingKey", spec.sharing_key}};
  if (spec.requested_ip) j["loadBalancerIP"] = conf::formatIpv4(*spec.requested_ip);
  if (spec.mode) j["mode"] = modeName(*spec.mode);
  return j;
}

LoadBalancerRegistry::LoadBalancerRegistry(std::string state_path) : file_(std::move(state_path)) {}

namespace {

AllocationRequest allocationFor(const LoadBalancerSpec& spec) {
  AllocationRequest request{.owner = spec.id(), .requested = spec.requested_ip, .sharing_key = spec.sharing_key};
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
    if (!item.is_object() || !item.contains("spec") || !item.contains("ip") || !item["spec"].is_object()) {
      return std::unexpected(file_.path() + ": an entry without spec and ip");
    }
    const json& spec_json = item["spec"];
    auto spec = parseLoadBalancerSpec(spec_json, spec_json.value("namespace", ""), spec_json.value("name", ""));
    if (!spec) return std::unexpected(file_.path() + ": " + spec_json.value("namespace", "?") + "/" +
                                      spec_json.value("name", "?") + ": " + spec.error());
    const auto address = item["ip"].is_string() ? conf::parseIpv4(item["ip"].get<std::string>()) : std::nullopt;
    if (!address) return std::unexpected(file_.path() + ": " + spec->id() + ": bad ip " + item["ip"].dump());
    ipam_.adopt(allocationFor(*spec), *address);
    std::string id = spec->id();  // before the spec is moved into the entry
    loaded.emplace(std::move(id), Entry{.spec = std::move(*spec), .address = *address});
  }
  balancers_ = std::move(loaded);
  return balancers_.size();
}

void LoadBalancerRegistry::configure(const conf::Config& config) {
  config_ = config;
  ipam_.setPools(config.pools);
  std::map<uint32_t, std::string> statics;
  for (const conf::ServiceConfig& s : config.services) statics.emplace(s.vip, s.namespace_name + "/" + s.name);
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
  json body{{"namespace", e.spec.namespace_name},
            {"name", e.spec.name},
            {"ingress", json::array({json{{"ip", conf::formatIpv4(e.address)}, {"ipMode", ip_mode},
                                          {"ports", std::move(ports)}}})},
            {"spec", specJson(e.spec)}};
  if (!ipam_.poolOf(e.address) && !(e.spec.requested_ip && *e.spec.requested_ip == e.address)) {
    body["warning"] = conf::formatIpv4(e.address) + " is no longer in any pool; it stays until the load balancer is deleted";
  }
  if (e.spec.nodes.empty()) body["warning"] = "no nodes: the address is allocated but nothing is programmed";
  return body;
}

std::string LoadBalancerRegistry::conflicts(const LoadBalancerSpec& spec, bool api_only) const {
  // A node name means one address everywhere: in the config file and in every load balancer.
  std::map<std::string, uint32_t> known;
  for (const conf::NodeConfig& n : config_.nodes) known.emplace(n.name, n.address);
  for (const auto& [id, e] : balancers_) {
    if (id == spec.id() || (api_only && e.source != LbSource::kApi)) continue;
    for (const LbNode& n : e.spec.nodes) known.emplace(n.name, n.address);
  }
  std::set<uint32_t> own;
  for (const conf::PortConfig& p : config_.dataplane.ports) own.insert(p.address.address);
  for (uint32_t a : config_.dataplane.snat.addresses) own.insert(a);
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const LbNode& n = spec.nodes[i];
    const std::string at = "nodes[" + std::to_string(i) + "]";
    if (auto it = known.find(n.name); it != known.end() && it->second != n.address) {
      return at + ": node '" + n.name + "' has address " + conf::formatIpv4(it->second) + " elsewhere, not " +
             conf::formatIpv4(n.address);
    }
    if (own.contains(n.address)) return at + ".address: " + conf::formatIpv4(n.address) + " is an address of the box";
  }
  return "";
}

std::expected<void, std::string> LoadBalancerRegistry::commit(std::map<std::string, Entry> next) {
  json list = json::array();
  for (const auto& [id, e] : next) {
    if (e.source == LbSource::kApi) list.push_back(json{{"spec", specJson(e.spec)}, {"ip", conf::formatIpv4(e.address)}});
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
  auto address = ipam_.allocate(allocationFor(spec));
  if (!address) {
    return {409, json{{"error", (spec.requested_ip ? "loadBalancerIP: " : "address: ") + address.error()}}, false};
  }
  auto next = balancers_;
  const auto old = next.find(id);
  const bool same = old != next.end() && specJson(old->second.spec) == specJson(spec) && old->second.address == *address;
  next[id] = Entry{.spec = std::move(spec), .address = *address};
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
  auto address = ipam_.allocate(allocationFor(spec));
  if (!address && fallback && spec.requested_ip) {
    spec.requested_ip.reset();
    address = ipam_.allocate(allocationFor(spec));
  }
  if (!address) {
    return {409, json{{"error", (spec.requested_ip ? "loadBalancerIP: " : "address: ") + address.error()}}, false};
  }
  // No copy of the whole set and no file: a cold start ensures thousands of these.
  auto [it, fresh] = balancers_.try_emplace(id);
  Entry& e = it->second;
  const bool same = !fresh && e.address == *address && e.spec == spec;
  e = Entry{.spec = std::move(spec), .address = *address, .source = LbSource::kKubernetes};
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

std::optional<uint32_t> LoadBalancerRegistry::addressOf(const std::string& id) const {
  auto it = balancers_.find(id);
  if (it == balancers_.end()) return std::nullopt;
  return it->second.address;
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
      if (e.address == s.vip) {
        return config.source + ": services.[" + std::to_string(i) + "].vip: " + conf::formatIpv4(s.vip) +
               " is allocated to load balancer " + id + " (declared through the API)";
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
      if (names.insert(n.name).second) out.nodes.push_back(conf::NodeConfig{.name = n.name, .address = n.address});
    }
    conf::ServiceConfig svc{.namespace_name = e.spec.namespace_name, .name = e.spec.name, .vip = e.address};
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
