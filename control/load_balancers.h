#pragma once
// Load balancers declared through the cloud-provider-style REST API (the box's side of
// a cloud-controller integration): PUT (EnsureLoadBalancer), GET (GetLoadBalancer),
// DELETE (EnsureLoadBalancerDeleted) of /v1/loadbalancers/{namespace}/{name}, and
// PUT .../nodes (UpdateLoadBalancer: the node set only). docs/api.md has the JSON.
// The Kubernetes controller (control/kube_controller.h) keeps its load balancers here
// too, so both sources share the pools; those are not persisted (the Services' status
// is their source of truth) and the REST API cannot change them.
//
// The registry validates a request (errors name the field), allocates the ingress
// address from the VIP pools (control/ipam.h), persists the whole set atomically
// (control/state_file.h) and only then changes its state: a request that fails at any
// step changes nothing. merged() adds the declared load balancers to the config-file
// model for the compiler. Control thread only.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "conf/config.h"
#include "control/ipam.h"
#include "control/state_file.h"

namespace ng::control {

struct LbPort {
  std::string name;
  std::string protocol;   // "TCP", "UDP" or "SCTP" (accepted, reported as not served)
  uint16_t port = 0;
  uint16_t node_port = 0; // 0: allocateLoadBalancerNodePorts false (reported, not served)
  [[nodiscard]] std::optional<std::string> error() const;  // why the port is not served
  friend bool operator==(const LbPort&, const LbPort&) = default;
};

struct LbNode {
  std::string name;
  // One address per family, IPv4 first ("address", or "addresses" for a dual-stack
  // node); a VIP's traffic goes to the address of its family.
  std::vector<conf::IpAddress> addresses;
  friend bool operator==(const LbNode&, const LbNode&) = default;
};

// Who declared a load balancer.
enum class LbSource { kApi, kKubernetes };

struct LoadBalancerSpec {
  std::string namespace_name;
  std::string name;
  std::vector<LbPort> ports;
  std::vector<LbNode> nodes;
  conf::TrafficPolicy policy = conf::TrafficPolicy::kCluster;
  uint16_t health_check_node_port = 0;
  bool client_ip_affinity = false;
  uint32_t affinity_timeout_seconds = 10800;
  std::vector<conf::IpPrefix> source_ranges;  // either family (conf::ServiceConfig says how)
  // ipFamilies: one VIP per family, in this order (the first is the primary, as in
  // Kubernetes); default IPv4.
  std::vector<conf::IpFamily> families = {conf::IpFamily::kIpv4};
  // Requested addresses (loadBalancerIP / loadBalancerIPs), at most one per family, each
  // of a family in `families`.
  std::vector<conf::IpAddress> requested_ips;
  std::string sharing_key;
  // Forwarding mode ("mode": "fullnat" / "tunnel"); unset = the box's dataplane.mode.
  std::optional<conf::Mode> mode;

  [[nodiscard]] std::optional<conf::IpAddress> requested(conf::IpFamily family) const;

  [[nodiscard]] std::string id() const { return namespace_name + "/" + name; }
  friend bool operator==(const LoadBalancerSpec&, const LoadBalancerSpec&) = default;
};

// Parses a request body for namespace/name (from the path). Errors name the field:
// "ports[1].nodePort: 70000 is not an integer in 0..65535".
[[nodiscard]] std::expected<LoadBalancerSpec, std::string> parseLoadBalancerSpec(
    const nlohmann::json& body, const std::string& namespace_name, const std::string& name);
[[nodiscard]] nlohmann::json specJson(const LoadBalancerSpec& spec);

class LoadBalancerRegistry {
 public:
  struct Reply {
    int status = 200;
    nlohmann::json body;
    bool changed = false;  // the data plane needs a new generation
  };

  explicit LoadBalancerRegistry(std::string state_path);

  // Start-up: reads the state file and re-adopts every address (they never move across
  // a restart). Error: the file is corrupt or unreadable; the box must not start.
  [[nodiscard]] std::expected<size_t, std::string> load(const conf::Config& config);
  // Pools and static VIPs from the (re)loaded config file.
  void configure(const conf::Config& config);
  // Why `config` cannot replace the running one next to the declared load balancers
  // (a static VIP on an address already allocated to one); "" = it can.
  [[nodiscard]] std::string conflictsWith(const conf::Config& config) const;

  [[nodiscard]] Reply ensure(const nlohmann::json& body, const std::string& namespace_name,
                             const std::string& name);
  [[nodiscard]] Reply updateNodes(const nlohmann::json& body, const std::string& namespace_name,
                                  const std::string& name);
  [[nodiscard]] Reply get(const std::string& namespace_name, const std::string& name) const;
  [[nodiscard]] Reply remove(const std::string& namespace_name, const std::string& name);
  [[nodiscard]] Reply list() const;

  // The Kubernetes controller's load balancers: like ensure() and remove(), for a spec
  // it built itself, without persisting. When `spec` asks for an address
  // (requested_ips) that cannot be had and `fallback` is set, an automatic one is taken
  // instead (re-adopting a Service's old status address is a wish, not a demand).
  // 409: the id belongs to a REST-declared load balancer, or the address is refused.
  [[nodiscard]] Reply ensureKubernetes(LoadBalancerSpec spec, bool fallback);
  [[nodiscard]] Reply removeKubernetes(const std::string& id);
  [[nodiscard]] std::vector<std::string> kubernetesIds() const;
  // The load balancer's addresses, in its ipFamilies order (empty: unknown id).
  [[nodiscard]] std::vector<conf::IpAddress> addressesOf(const std::string& id) const;

  // `base` plus the declared load balancers (Services and their nodes).
  [[nodiscard]] conf::Config merged(const conf::Config& base) const;
  [[nodiscard]] size_t size() const noexcept { return balancers_.size(); }
  [[nodiscard]] bool contains(const std::string& id) const { return balancers_.contains(id); }
  [[nodiscard]] std::optional<LbSource> sourceOf(const std::string& id) const;

 private:
  struct Entry {
    LoadBalancerSpec spec;
    std::vector<conf::IpAddress> addresses;  // one per spec.families, same order
    LbSource source = LbSource::kApi;
  };
  // Allocates an address per family of `spec` ("" error = all allocated). On an error
  // the IPAM is as before.
  [[nodiscard]] std::expected<std::vector<conf::IpAddress>, std::string> allocate(const LoadBalancerSpec& spec);
  // 409 when `id` is held by the other source.
  [[nodiscard]] std::optional<Reply> ownedByOther(const std::string& id, LbSource source) const;
  [[nodiscard]] nlohmann::json statusJson(const Entry& entry) const;
  // Checks `spec` against the config file and the other load balancers ("" = fine).
  // With `api_only`, against the REST-declared ones only (the Kubernetes controller's
  // specs agree among themselves by construction: one node cache).
  [[nodiscard]] std::string conflicts(const LoadBalancerSpec& spec, bool api_only = false) const;
  // Persists `next` (the whole set); on success it becomes the state.
  [[nodiscard]] std::expected<void, std::string> commit(std::map<std::string, Entry> next);
  [[nodiscard]] Reply store(LoadBalancerSpec spec);

  StateFile file_;
  conf::Config config_;  // the config file's model, for conflicts and defaults
  Ipam ipam_;
  std::map<std::string, Entry> balancers_;  // by "namespace/name"
};

}  // namespace ng::control
