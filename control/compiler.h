#pragma once
// Compiles the model (config today; REST and Kubernetes sources later) into an immutable
// ForwardingSnapshot. Runs on the control thread only; everything expensive (Maglev
// population, the VIP index) happens here so workers only look up.
//
// Maglev tables are keyed by their node set (addresses and weights), not by Service:
// Services that span the same nodes share one table, and a table whose node set did not
// change since the previous generation is reused, not rebuilt.

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "dataplane/fwd/snapshot.h"
#include "dataplane/lb/maglev.h"

namespace ng::control {

struct CompileStats {
  uint32_t service_ports = 0;
  uint32_t maglev_tables = 0;       // distinct tables in the snapshot
  uint32_t maglev_built = 0;        // tables built for this generation (not reused)
  uint32_t slots_moved = 0;         // sum over service ports whose node set changed
};

// Smallest prime >= max(min_size, 100 x backends): the Maglev table size for a node set.
[[nodiscard]] uint32_t maglevSizeFor(uint32_t min_size, size_t backends);

class SnapshotCompiler {
 public:
  explicit SnapshotCompiler(uint32_t maglev_size = lb::kDefaultMaglevSize);

  [[nodiscard]] std::unique_ptr<fwd::ForwardingSnapshot> compile(const conf::Config& config,
                                                                 uint64_t generation);
  [[nodiscard]] const CompileStats& lastStats() const noexcept { return stats_; }

 private:
  using NodeSet = std::vector<std::pair<uint32_t, uint32_t>>;  // (node address, weight), sorted
  struct CachedTable {
    std::shared_ptr<const lb::MaglevTable> table;
    std::vector<lb::MaglevBackend> backends;
  };
  std::shared_ptr<const lb::MaglevTable> tableFor(const NodeSet& nodes,
                                                  std::map<NodeSet, CachedTable>& next);

  uint32_t maglev_size_;
  std::map<NodeSet, CachedTable> tables_;  // previous generation's tables
  // Per VIP:port/protocol, the node set it used last generation (for churn reporting).
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, NodeSet> previous_sets_;
  CompileStats stats_;
};

}  // namespace ng::control
