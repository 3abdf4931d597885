#pragma once
// Kubernetes objects -> NodeGate load balancers, exactly as ../shared/KUBERNETES.md
// says: which Services are ours, which Nodes are candidates and at which address, the
// LoadBalancerSpec of a Service, and the status NodeGate writes back.
//
// Pure functions over the API server's JSON: no I/O, any thread. The controller
// (control/kube_controller.h) applies them; tests pin them with the objects of
// KUBERNETES.md.

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/config.h"
#include "control/kube/reflector.h"
#include "control/load_balancers.h"

namespace ng::control {

// Annotations NodeGate reads on a Service.
inline constexpr std::string_view kSourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges";
inline constexpr std::string_view kRequestedIpsAnnotation = "nodegate.io/load-balancer-ips";  // "a.b.c.d[,...]"
inline constexpr std::string_view kSharingKeyAnnotation = "nodegate.io/allow-shared-ip";
// "fullnat" (status ipMode Proxy) or "tunnel" (IPIP to the nodes, DSR; ipMode VIP);
// absent = the box's dataplane.mode.
inline constexpr std::string_view kForwardingModeAnnotation = "nodegate.io/forwarding-mode";
// The node label and taint that take a node out of every load balancer.
inline constexpr std::string_view kExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers";
inline constexpr std::string_view kAutoscalerTaint = "ToBeDeletedByClusterAutoscaler";

// object[a][b]... when it is a string, else "" (never throws, whatever the JSON holds).
[[nodiscard]] std::string stringField(const nlohmann::json& object, std::initializer_list<const char*> path);
// "namespace/name" (or "name" for cluster-scoped objects); "" when the object has no
// name: the reflector's key, so caches on both sides agree.
using kube::objectKey;
[[nodiscard]] std::string objectUid(const nlohmann::json& object);
[[nodiscard]] bool isDeleting(const nlohmann::json& object);
[[nodiscard]] bool hasFinalizer(const nlohmann::json& object, std::string_view finalizer);

// spec.type LoadBalancer and the class rule: with `class_name` set, exactly that
// loadBalancerClass; with "" (the cluster's default load balancer), no class at all.
[[nodiscard]] bool isOurClass(const nlohmann::json& service, const std::string& class_name);
// Ours and not being deleted: it should have a load balancer.
[[nodiscard]] bool wantsLoadBalancer(const nlohmann::json& service, const std::string& class_name);

// A Node that may carry load balancer traffic, at one address per family: the first of
// the preferred type (else of the other type); nullopt when it may not: being deleted,
// labelled exclude-from-external-load-balancers with a value that does not parse as
// false, tainted for the cluster autoscaler, or without any InternalIP/ExternalIP. NotReady and
// cordoned nodes stay candidates: health checks decide where traffic goes.
[[nodiscard]] std::optional<LbNode> candidateNode(const nlohmann::json& node, conf::NodeAddressType preferred);
// Go's strconv.ParseBool, which kube's node predicate uses for the exclude label.
[[nodiscard]] std::optional<bool> parseGoBool(std::string_view text);

struct ServiceTranslation {
  LoadBalancerSpec spec;
  bool fallback = false;              // spec.requested_ips are only the old status addresses
  std::vector<std::string> warnings;  // served, but something was not taken as given
};
// The load balancer of a Service of ours over the candidate `nodes`: one VIP per entry of
// spec.ipFamilies; requested addresses from spec.loadBalancerIP or the annotation (one
// per family), else the addresses in its status as a wish (fallback). `last_good` is the
// spec applied before (nullptr for a new Service): an unparsable source range keeps its
// ranges, and fails closed (an error, nothing programmed) when there is none; an
// unknown forwarding-mode annotation keeps the last good mode, and is an error for a
// new Service.
// Error: a sentence naming the field.
[[nodiscard]] std::expected<ServiceTranslation, std::string> translateService(const nlohmann::json& service,
                                                                            const std::vector<LbNode>& nodes,
                                                                            const LoadBalancerSpec* last_good);

// status.loadBalancer.ingress for a Service served at `addresses`: one entry per
// address (ipFamilies order) with ipMode ("Proxy" for fullnat, "VIP" for tunnel), and, when a port is not served, every
// port with the reason on the ones that are not.
[[nodiscard]] nlohmann::json ingressFor(const LoadBalancerSpec& spec, const std::vector<conf::IpAddress>& addresses,
                                        std::string_view ip_mode);
// The Service's current status.loadBalancer.ingress (null when absent or empty).
[[nodiscard]] nlohmann::json currentIngress(const nlohmann::json& service);

}  // namespace ng::control
