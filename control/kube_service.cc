#include "control/kube_service.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace ng::control {
namespace {

using nlohmann::json;

// `object`[a][b]... or a null json when any step is missing or not an object.
const json& at(const json& object, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cursor = &object;
  for (const char* key : path) {
    if (!cursor->is_object()) return kNull;
    auto it = cursor->find(key);
    if (it == cursor->end()) return kNull;
    cursor = &*it;
  }
  return *cursor;
}

std::string stringAt(const json& object, std::initializer_list<const char*> path) {
  const json& value = at(object, path);
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> splitComma(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view part = trim(text.substr(0, comma));
    if (!part.empty()) parts.emplace_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

// PortStatus.error must be CamelCase or "domain/CamelCase" (the API server validates it).
std::string portErrorReason(const LbPort& port) {
  if (port.protocol != "TCP" && port.protocol != "UDP") return "nodegate.io/UnsupportedProtocol";
  return "nodegate.io/NoNodePort";
}

// The Service's source ranges as written: the field, else the annotation (KUBERNETES.md).
std::pair<std::vector<std::string>, std::string> sourceRangesOf(const json& service) {
  const json& field = at(service, {"spec", "loadBalancerSourceRanges"});
  if (field.is_array() && !field.empty()) {
    std::vector<std::string> ranges;
    for (const json& r : field) ranges.push_back(r.is_string() ? r.get<std::string>() : r.dump());
    return {ranges, "spec.loadBalancerSourceRanges"};
  }
  const json& annotation = at(service, {"metadata", "annotations", std::string(kSourceRangesAnnotation).c_str()});
  if (annotation.is_string()) {
    return {splitComma(annotation.get<std::string>()),
            "metadata.annotations[" + std::string(kSourceRangesAnnotation) + "]"};
  }
  return {{}, ""};
}

}  // namespace

std::string stringField(const json& object, std::initializer_list<const char*> path) {
  return stringAt(object, path);
}

std::string objectUid(const json& object) { return stringAt(object, {"metadata", "uid"}); }

bool isDeleting(const json& object) {
  const json& ts = at(object, {"metadata", "deletionTimestamp"});
  return !ts.is_null();
}

bool hasFinalizer(const json& object, std::string_view finalizer) {
  const json& list = at(object, {"metadata", "finalizers"});
  if (!list.is_array()) return false;
  return std::ranges::any_of(list, [&](const json& f) { return f.is_string() && f.get<std::string>() == finalizer; });
}

bool isOurClass(const json& service, const std::string& class_name) {
  if (stringAt(service, {"spec", "type"}) != "LoadBalancer") return false;
  const json& cls = at(service, {"spec", "loadBalancerClass"});
  if (class_name.empty()) return cls.is_null() || (cls.is_string() && cls.get<std::string>().empty());
  return cls.is_string() && cls.get<std::string>() == class_name;
}

bool wantsLoadBalancer(const json& service, const std::string& class_name) {
  return isOurClass(service, class_name) && !isDeleting(service);
}

std::optional<bool> parseGoBool(std::string_view text) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (text == t) return true;
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (text == f) return false;
  }
  return std::nullopt;
}

std::optional<LbNode> candidateNode(const json& node, conf::NodeAddressType preferred) {
  const std::string name = stringAt(node, {"metadata", "name"});
  if (name.empty() || isDeleting(node)) return std::nullopt;
  const json& labels = at(node, {"metadata", "labels"});
  if (labels.is_object()) {
    auto it = labels.find(std::string(kExcludeLabel));
    if (it != labels.end()) {
      // Present: excluded unless it parses as false (an unparsable value excludes).
      const auto value = it->is_string() ? parseGoBool(it->get<std::string>()) : std::nullopt;
      if (value != false) return std::nullopt;
    }
  }
  const json& taints = at(node, {"spec", "taints"});
  if (taints.is_array()) {
    for (const json& t : taints) {
      if (stringAt(t, {"key"}) == kAutoscalerTaint) return std::nullopt;
    }
  }
  const json& addresses = at(node, {"status", "addresses"});
  if (!addresses.is_array()) return std::nullopt;
  const char* first = preferred == conf::NodeAddressType::kInternalIp ? "InternalIP" : "ExternalIP";
  const char* second = preferred == conf::NodeAddressType::kInternalIp ? "ExternalIP" : "InternalIP";
  // Per family: the first address of the preferred type, else of the other type.
  LbNode out{.name = name};
  for (conf::IpFamily family : {conf::IpFamily::kIpv4, conf::IpFamily::kIpv6}) {
    std::optional<conf::IpAddress> found;
    for (const char* type : {first, second}) {
      for (const json& a : addresses) {
        if (found || stringAt(a, {"type"}) != type) continue;
        auto address = conf::IpAddress::parse(stringAt(a, {"address"}));
        if (address && address->family() == family && address->isUnicastHost()) found = address;
      }
    }
    if (found) out.addresses.push_back(*found);
  }
  if (out.addresses.empty()) return std::nullopt;
  return out;
}

std::expected<ServiceTranslation, std::string> translateService(const json& service, const std::vector<LbNode>& nodes,
                                                                const LoadBalancerSpec* last_good) {
  ServiceTranslation out;
  LoadBalancerSpec& spec = out.spec;
  spec.namespace_name = stringAt(service, {"metadata", "namespace"});
  spec.name = stringAt(service, {"metadata", "name"});
  if (spec.namespace_name.empty() || spec.name.empty()) return std::unexpected(std::string("metadata: no namespace or name"));

  // One VIP per family, primary first. The API server always fills ipFamilies (1.20+);
  // without it (an older server) a Service is IPv4.
  const json& families = at(service, {"spec", "ipFamilies"});
  if (families.is_array() && !families.empty()) {
    spec.families.clear();
    for (const json& f : families) {
      if (f != "IPv4" && f != "IPv6") return std::unexpected("spec.ipFamilies: " + f.dump() + " is not IPv4 or IPv6");
      const auto family = f == "IPv4" ? conf::IpFamily::kIpv4 : conf::IpFamily::kIpv6;
      if (std::ranges::find(spec.families, family) != spec.families.end() || spec.families.size() == 2) {
        return std::unexpected("spec.ipFamilies: " + families.dump() + " lists a family twice");
      }
      spec.families.push_back(family);
    }
  }

  const json& ports = at(service, {"spec", "ports"});
  if (!ports.is_array() || ports.empty()) return std::unexpected(std::string("spec.ports: none"));
  std::set<std::pair<std::string, uint16_t>> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    const json& p = ports[i];
    const std::string where = "spec.ports[" + std::to_string(i) + "]";
    LbPort port{.name = stringAt(p, {"name"}), .protocol = stringAt(p, {"protocol"})};
    if (port.protocol.empty()) port.protocol = "TCP";
    const json& number = at(p, {"port"});
    if (!number.is_number_integer() || number.get<int64_t>() < 1 || number.get<int64_t>() > 65535) {
      return std::unexpected(where + ".port: " + number.dump() + " is not in 1..65535");
    }
    port.port = static_cast<uint16_t>(number.get<int64_t>());
    const json& node_port = at(p, {"nodePort"});
    if (node_port.is_number_integer() && node_port.get<int64_t>() >= 1 && node_port.get<int64_t>() <= 65535) {
      port.node_port = static_cast<uint16_t>(node_port.get<int64_t>());
    }
    if (!seen.emplace(port.protocol, port.port).second) {
      return std::unexpected(where + ": " + std::to_string(port.port) + "/" + port.protocol + " is listed twice");
    }
    spec.ports.push_back(std::move(port));
  }

  spec.nodes = nodes;

  if (stringAt(service, {"spec", "externalTrafficPolicy"}) == "Local") {
    spec.policy = conf::TrafficPolicy::kLocal;
    const json& hcnp = at(service, {"spec", "healthCheckNodePort"});
    if (!hcnp.is_number_integer() || hcnp.get<int64_t>() < 1 || hcnp.get<int64_t>() > 65535) {
      return std::unexpected("spec.healthCheckNodePort: " + hcnp.dump() +
                             " is not a port; externalTrafficPolicy Local needs it");
    }
    spec.health_check_node_port = static_cast<uint16_t>(hcnp.get<int64_t>());
  }

  if (stringAt(service, {"spec", "sessionAffinity"}) == "ClientIP") {
    spec.client_ip_affinity = true;
    const json& timeout = at(service, {"spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"});
    if (!timeout.is_null()) {
      if (!timeout.is_number_integer() || timeout.get<int64_t>() < 1 || timeout.get<int64_t>() > 86400) {
        return std::unexpected("spec.sessionAffinityConfig.clientIP.timeoutSeconds: " + timeout.dump() +
                               " is not in 1..86400");
      }
      spec.affinity_timeout_seconds = static_cast<uint32_t>(timeout.get<int64_t>());
    }
  }

  // Source ranges: an unparsable one must never open the VIP to everyone. A VIP admits
  // only the ranges of its own family (conf::ServiceConfig::source_ranges).
  auto [ranges, ranges_field] = sourceRangesOf(service);
  std::string range_error;
  for (const std::string& text : ranges) {
    auto prefix = conf::IpPrefix::parse(text);
    if (!prefix) {
      range_error = ranges_field + ": '" + text + "' is not a CIDR";
      break;
    }
    // Kubernetes accepts "10.0.0.1/8" in the annotation; the network is what it means.
    const conf::IpPrefix network = prefix->network();
    if (std::ranges::find(spec.source_ranges, network) == spec.source_ranges.end()) spec.source_ranges.push_back(network);
  }
  if (!range_error.empty()) {
    if (last_good == nullptr) return std::unexpected(range_error + "; not programmed until it is fixed");
    spec.source_ranges = last_good->source_ranges;
    out.warnings.push_back(range_error + "; the last good ranges stay in force");
  }

  // The address: the Service's request (field or annotation); else, as a wish only, the
  // address its status already shows, so a restart re-adopts it rather than reshuffling.
  // The field holds one address; the annotation one per family ("203.0.113.10,2001:db8::10").
  const std::string field = stringAt(service, {"spec", "loadBalancerIP"});
  const std::string annotated = stringAt(service, {"metadata", "annotations", std::string(kRequestedIpsAnnotation).c_str()});
  const std::string requested_field =
      !field.empty() ? "spec.loadBalancerIP" : "metadata.annotations[" + std::string(kRequestedIpsAnnotation) + "]";
  for (const std::string& text : !field.empty() ? std::vector<std::string>{field} : splitComma(annotated)) {
    auto address = conf::IpAddress::parse(text);
    if (!address || !address->isUnicastHost()) {
      return std::unexpected(requested_field + ": '" + text + "' is not a unicast IP address");
    }
    if (std::ranges::find(spec.families, address->family()) == spec.families.end()) {
      // One annotation value often serves single- and dual-stack clusters alike.
      out.warnings.push_back(requested_field + ": " + text + " is " + conf::ipFamilyName(address->family()) +
                             ", not one of the Service's ipFamilies; ignored");
      continue;
    }
    if (spec.requested(address->family())) {
      return std::unexpected(requested_field + ": two " + std::string(conf::ipFamilyName(address->family())) +
                             " addresses; at most one per family");
    }
    spec.requested_ips.push_back(*address);
  }
  if (spec.requested_ips.empty()) {
    const json ingress = currentIngress(service);
    if (ingress.is_array()) {
      for (const json& entry : ingress) {
        auto address = conf::IpAddress::parse(stringAt(entry, {"ip"}));
        if (!address || std::ranges::find(spec.families, address->family()) == spec.families.end() ||
            spec.requested(address->family())) {
          continue;
        }
        spec.requested_ips.push_back(*address);
        out.fallback = true;
      }
    }
  }
  std::ranges::sort(spec.requested_ips);
  spec.sharing_key = stringAt(service, {"metadata", "annotations", std::string(kSharingKeyAnnotation).c_str()});

  const json& mode = at(service, {"metadata", "annotations", std::string(kForwardingModeAnnotation).c_str()});
  if (mode.is_string()) {
    const std::string text = mode.get<std::string>();
    if (text == "fullnat") {
      spec.mode = conf::Mode::kFullNat;
    } else if (text == "tunnel") {
      spec.mode = conf::Mode::kTunnel;
    } else {
      const std::string error = "metadata.annotations[" + std::string(kForwardingModeAnnotation) + "]: '" + text +
                                "' is not one of fullnat, tunnel";
      // Switching an existing Service's mode on a typo would move its traffic: keep it.
      if (last_good == nullptr) return std::unexpected(error + "; not programmed until it is fixed");
      spec.mode = last_good->mode;
      out.warnings.push_back(error + "; the last good mode stays in force");
    }
  }
  return out;
}

json ingressFor(const LoadBalancerSpec& spec, const std::vector<conf::IpAddress>& addresses,
                std::string_view ip_mode) {
  json ports = nullptr;
  if (std::ranges::any_of(spec.ports, [](const LbPort& p) { return p.error().has_value(); })) {
    ports = json::array();
    for (const LbPort& p : spec.ports) {
      json port{{"port", p.port}, {"protocol", p.protocol}};
      if (p.error()) port["error"] = portErrorReason(p);
      ports.push_back(std::move(port));
    }
  }
  json out = json::array();
  for (const conf::IpAddress& a : addresses) {
    json entry{{"ip", a.str()}, {"ipMode", ip_mode}};
    if (!ports.is_null()) entry["ports"] = ports;
    out.push_back(std::move(entry));
  }
  return out;
}

json currentIngress(const json& service) {
  const json& ingress = at(service, {"status", "loadBalancer", "ingress"});
  if (!ingress.is_array() || ingress.empty()) return nullptr;
  return ingress;
}

}  // namespace ng::control
