#pragma once
// What the status API, /metrics and ngctl show about the VIP tables: one immutable view
// per generation, built by the compiler next to the ForwardingSnapshot and published to
// the API thread as a shared_ptr (StatusModel). It holds names and stats ids, never
// pointers into a snapshot, so the API thread never touches data-plane memory that RCU
// may reclaim. Live values (counters, rates, health) are looked up per request.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "nodeport/backends.h"

namespace ng::control {

struct CompileStats {
  uint32_t service_ports = 0;
  uint32_t maglev_tables = 0;       // distinct tables in the snapshot
  uint32_t maglev_built = 0;        // tables built for this generation (not reused)
  uint32_t slots_moved = 0;         // sum over service ports whose node set changed
  uint32_t backends_unattributed = 0;  // backends without a stats id (id space exhausted)
};

struct BackendView {
  std::string node;
  conf::IpAddress address;  // of the VIP's family
  uint16_t node_port = 0;
  uint32_t weight = 1;     // reported weight (0 = drain)
  bool serving = true;     // in the Maglev table of this generation
  uint32_t stats_id = 0;   // fwd::BackendStats slot (0 = unattributed)
  std::optional<nodeport::ProbeTarget> probe;
};

struct PortView {
  std::string name;
  uint16_t port = 0;
  conf::Protocol protocol = conf::Protocol::kTcp;
  uint16_t node_port = 0;
  conf::TrafficPolicy policy = conf::TrafficPolicy::kCluster;
  bool all_down = false;
  std::vector<BackendView> backends;  // sorted by node address
};

struct VipView {
  conf::IpAddress vip;
  std::string owner;            // "namespace/name"
  std::string source = "config";
  conf::Mode mode = conf::Mode::kFullNat;
  std::vector<PortView> ports;  // sorted by (port, protocol)
};

struct NodeView {
  std::string name;
  std::vector<conf::IpAddress> addresses;  // one per family, IPv4 first
};

struct StatusView {
  uint64_t generation = 0;
  int64_t compiled_unix_ms = 0;
  double compile_ms = 0;
  CompileStats stats;
  std::vector<VipView> vips;    // sorted by address (IPv4 first)
  std::vector<NodeView> nodes;  // as configured
};

[[nodiscard]] const char* protocolName(conf::Protocol protocol) noexcept;  // "TCP" / "UDP"
[[nodiscard]] const char* modeName(conf::Mode mode) noexcept;              // "fullnat" / "tunnel"
[[nodiscard]] const char* ipModeName(conf::Mode mode) noexcept;            // "Proxy" / "VIP"
[[nodiscard]] const char* policyName(conf::TrafficPolicy policy) noexcept; // "Cluster" / "Local"

}  // namespace ng::control
