#pragma once
// Compiles the model (config today; REST and Kubernetes sources later) and the health
// verdicts into an immutable ForwardingSnapshot, plus the StatusView that describes it.
// Runs on the control thread only; everything expensive (Maglev population, the VIP
// index) happens here so workers only look up.
//
// Maglev tables are keyed by their node set (addresses and weights), not by Service:
// Services that span the same nodes share one table, and a table whose node set did not
// change since the previous generation is reused, not rebuilt.
//
// Per service port the snapshot also carries the Service's loadBalancerSourceRanges as
// merged address intervals (fwd::mergeSourceRanges) and its ClientIP affinity timeout.
//
// Backend stats ids: every (VIP:port/protocol, node:nodePort) keeps its id while it
// stays a candidate, whatever its health, so its counters continue across generations.
// A released id is reused only after every never-used id is gone, oldest first, and from
// the generation after its release: flows still counting to it by then (they hold the
// id) are rare, and are misattributed. A backend that found no free id counts as
// unattributed (id 0) and tries again in every later generation.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "control/status_view.h"
#include "dataplane/fwd/backend_stats.h"
#include "dataplane/fwd/snapshot.h"
#include "dataplane/lb/maglev.h"
#include "nodeport/backends.h"

namespace ng::control {

// Smallest prime >= max(min_size, 100 x backends): the Maglev table size for a node set.
[[nodiscard]] uint32_t maglevSizeFor(uint32_t min_size, size_t backends);
// A node's Maglev identity (lb::MaglevBackend::id): its IPv4 address, or a fixed 64-bit
// hash of its IPv6 address. Deterministic, so boxes behind ECMP agree.
[[nodiscard]] uint64_t maglevId(const conf::IpAddress& address) noexcept;
// An IPv6 address as the data plane holds it (zero for an IPv4 one).
[[nodiscard]] fwd::Ip6 toIp6(const conf::IpAddress& address) noexcept;

// dataplane.tunnel as the workers use it: the outer source range (default: the internal
// port's address), without the network and broadcast addresses of a /30 or wider.
[[nodiscard]] fwd::TunnelSettings tunnelSettings(const conf::Config& config);

class SnapshotCompiler {
 public:
  explicit SnapshotCompiler(uint32_t maglev_size = lb::kDefaultMaglevSize,
                            uint32_t stats_capacity = fwd::kBackendStatsCapacity);

  // `health` may be null (every node serves).
  [[nodiscard]] std::unique_ptr<fwd::ForwardingSnapshot> compile(const conf::Config& config,
                                                                 uint64_t generation,
                                                                 const nodeport::HealthView* health = nullptr);
  [[nodiscard]] const CompileStats& lastStats() const noexcept { return stats_; }
  // The view of the last compiled generation.
  [[nodiscard]] std::shared_ptr<const StatusView> lastStatus() const noexcept { return status_; }

 private:
  using NodeSet = std::vector<std::pair<conf::IpAddress, uint32_t>>;  // (node address, weight), sorted
  struct CachedTable {
    std::shared_ptr<const lb::MaglevTable> table;
    std::vector<lb::MaglevBackend> backends;
  };
  // Stats ids of one VIP:port/protocol's backends, sorted by (node address, nodePort) -
  // the order nodeport gives backends in - so a compile matches them with one merge walk
  // instead of a hash lookup per backend (10,000 Services x 300 nodes is 3M backends).
  struct PortIds {
    struct Entry {
      conf::IpAddress node;
      uint16_t node_port = 0;
      uint32_t id = 0;  // 0 = unattributed (no id was free)
    };
    std::vector<Entry> entries;
    uint64_t pass = 0;  // the compile that last used them
  };
  std::shared_ptr<const lb::MaglevTable> tableFor(const NodeSet& nodes,
                                                  std::map<NodeSet, CachedTable>& next);
  // Ids for `backends` (sorted by address) of the port `port_key`, in their order.
  using PortKey = std::tuple<conf::IpAddress, uint16_t, uint8_t>;  // VIP, port, IP protocol
  void assignStatsIds(const PortKey& port_key, const std::vector<nodeport::NodeBackend>& backends,
                      std::vector<uint32_t>& ids);
  uint32_t takeFreeId();

  uint32_t maglev_size_;
  uint32_t stats_capacity_;
  std::map<NodeSet, CachedTable> tables_;  // previous generation's tables
  // Per VIP:port/protocol, the node set it used last generation (for churn reporting).
  std::map<PortKey, NodeSet> previous_sets_;
  // By VIP << 32 | port << 8 | protocol. Ports a compile did not see are released after it.
  std::map<PortKey, PortIds> stats_ids_;
  std::vector<uint32_t> released_;  // released by the current compile, freed after it
  uint64_t pass_ = 0;
  std::deque<uint32_t> free_ids_;             // released, oldest first
  uint32_t next_fresh_id_ = 1;                // 0 = unattributed
  CompileStats stats_;
  std::shared_ptr<const StatusView> status_;
  std::map<uint32_t, uint64_t> vip_since_;  // VIP -> generation it appeared in (last compile)
  std::map<pkt::Ip6, uint64_t> vip_since6_;  // the same for IPv6 VIPs
};

}  // namespace ng::control
