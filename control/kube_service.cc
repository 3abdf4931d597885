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
  for (const char* type : {first, second}) {
    for (const json& a : addresses) {
      if (stringAt(a, {"type"}) != type) continue;
      if (auto address = conf::parseIpv4(stringAt(a, {"address"}))) return LbNode{.name = name, .address = *address};
    }
  }
  return std::nullopt;
}

std::expected<ServiceTranslation, std::string> translateService(const json& service, const std::vector<LbNode>& nodes,
                                                                const LoadBalancerSpec* last_good) {
  ServiceTranslation out;
  LoadBalancerSpec& spec = out.spec;
  spec.namespace_name = stringAt(service, {"metadata", "namespace"});
  spec.name = stringAt(service, {"metadata", "name"});
  if (spec.namespace_name.empty() || spec.name.empty()) return std::unexpected(std::string("metadata: no namespace or name"));

  const json& families = at(service, {"spec", "ipFamilies"});
  if (families.is_array() && !families.empty() &&
      std::ranges::none_of(families, [](const json& f) { return f == "IPv4"; })) {
    return std::unexpected("spec.ipFamilies: " + families.dump() + ": this build serves IPv4 only");
  }
  if (families.is_array() && families.size() > 1) {
    out.warnings.push_back("spec.ipFamilies: dual-stack; only the IPv4 address is served");
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

  // Source ranges: an unparsable one must never open the VIP to everyone.
  auto [ranges, ranges_field] = sourceRangesOf(service);
  std::string range_error;
  for (const std::string& text : ranges) {
    if (text.find(':') != std::string::npos) continue;  // IPv6: not for an IPv4 VIP
    auto prefix = conf::parseIpv4Prefix(text);
    if (!prefix) {
      range_error = ranges_field + ": '" + text + "' is not a CIDR";
      break;
    }
    spec.source_ranges.push_back(*prefix);
  }
  if (range_error.empty() && !ranges.empty() && spec.source_ranges.empty()) {
    range_error = ranges_field + ": only IPv6 ranges, which would leave the IPv4 address open to everyone";
  }
  if (!range_error.empty()) {
    if (last_good == nullptr) return std::unexpected(range_error + "; not programmed until it is fixed");
    spec.source_ranges = last_good->source_ranges;
    out.warnings.push_back(range_error + "; the last good ranges stay in force");
  }

  // The address: the Service's request (field or annotation); else, as a wish only, the
  // address its status already shows, so a restart re-adopts it rather than reshuffling.
  std::string requested = stringAt(service, {"spec", "loadBalancerIP"});
  const std::string annotated = stringAt(service, {"metadata", "annotations", std::string(kRequestedIpsAnnotation).c_str()});
  std::string requested_field = "spec.loadBalancerIP";
  if (requested.empty() && !annotated.empty()) {
    requested_field = "metadata.annotations[" + std::string(kRequestedIpsAnnotation) + "]";
    for (const std::string& a : splitComma(annotated)) {
      if (a.find(':') == std::string::npos) {
        requested = a;
        break;
      }
    }
    if (requested.empty()) return std::unexpected(requested_field + ": '" + annotated + "' has no IPv4 address");
  }
  if (!requested.empty()) {
    auto address = conf::parseIpv4(requested);
    if (!address) return std::unexpected(requested_field + ": '" + requested + "' is not an IPv4 address");
    spec.requested_ip = *address;
  } else {
    const json ingress = currentIngress(service);
    if (ingress.is_array()) {
      for (const json& entry : ingress) {
        if (auto address = conf::parseIpv4(stringAt(entry, {"ip"}))) {
          spec.requested_ip = *address;
          out.fallback = true;
          break;
        }
      }
    }
  }
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

json ingressFor(const LoadBalancerSpec& spec, uint32_t address, std::string_view ip_mode) {
  json entry{{"ip", conf::formatIpv4(address)}, {"ipMode", ip_mode}};
  if (std::ranges::any_of(spec.ports, [](const LbPort& p) { return p.error().has_value(); })) {
    json ports = json::array();
    for (const LbPort& p : spec.ports) {
      json port{{"port", p.port}, {"protocol", p.protocol}};
      if (p.error()) port["error"] = portErrorReason(p);
      ports.push_back(std::move(port));
    }
    entry["ports"] = std::move(ports);
  }
  return json::array({std::move(entry)});
}

json currentIngress(const json& service) {
  const json& ingress = at(service, {"status", "loadBalancer", "ingress"});
  if (!ingress.is_array() || ingress.empty()) return nullptr;
  return ingress;
}

}  // namespace ng::control
