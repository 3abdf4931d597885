#pragma once
// The live status of the box, shared by the control thread (writer) and the API thread
// (reader): the StatusView of the published generation, per-backend traffic totals and
// rates summed over workers, worker busy ratios, and the outcome of the last reload.
//
// Threading: publish(), sample() and recordReload() run on the control thread; every
// other member may be called from any thread. Worker counters are read with relaxed
// loads (fwd::Counter), so a total may be one burst old, never torn.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/status_view.h"
#include "dataplane/fwd/backend_stats.h"
#include "dataplane/fwd/counters.h"

namespace ng::control {

struct TrafficCounters {
  uint64_t packets_in = 0;
  uint64_t bytes_in = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_out = 0;
  uint64_t new_flows = 0;
  uint64_t active_flows = 0;
  TrafficCounters& operator+=(const TrafficCounters& o) noexcept;
};

struct TrafficRates {  // per second, over the last sampling interval
  double packets_in = 0;
  double bytes_in = 0;
  double packets_out = 0;
  double bytes_out = 0;
  double new_flows = 0;
  TrafficRates& operator+=(const TrafficRates& o) noexcept;
};

// One worker as the status plane sees it; the pointers outlive the StatusModel.
struct WorkerSource {
  unsigned id = 0;
  unsigned lcore = 0;
  const fwd::WorkerCounters* counters = nullptr;
  const fwd::BackendStats* backend_stats = nullptr;  // may be null (tests)
  const std::atomic<uint64_t>* applied_generation = nullptr;  // may be null
  uint32_t flow_capacity = 0;   // IPv4 flow table
  uint32_t flow6_capacity = 0;  // IPv6 flow table (a separate one)
};

struct ReloadRecord {
  bool attempted = false;
  bool ok = false;
  std::string message;
  int64_t unix_ms = 0;
};

class StatusModel {
 public:
  StatusModel(std::vector<WorkerSource> workers, uint64_t tsc_hz);

  // Control thread: a new generation went live. Backends whose stats id changed owner
  // start from zero (their baseline is the id's current total).
  void publish(std::shared_ptr<const StatusView> view);
  // Control thread, about once a second: computes rates since the previous sample.
  void sample(std::chrono::steady_clock::time_point now);
  void recordReload(bool ok, std::string message);

  [[nodiscard]] std::shared_ptr<const StatusView> view() const;
  [[nodiscard]] TrafficCounters backendTotals(uint32_t stats_id) const;
  [[nodiscard]] TrafficRates backendRates(uint32_t stats_id) const;
  [[nodiscard]] double busyRatio(size_t worker) const;
  [[nodiscard]] ReloadRecord lastReload() const;
  [[nodiscard]] const std::vector<WorkerSource>& workers() const noexcept { return workers_; }
  [[nodiscard]] uint64_t generationsPublished() const;

 private:
  struct Raw {  // monotonic sums over workers
    uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0, new_flows = 0, closed_flows = 0;
  };
  [[nodiscard]] Raw raw(uint32_t stats_id) const;

  const std::vector<WorkerSource> workers_;
  const uint64_t tsc_hz_;
  mutable std::mutex mutex_;
  std::shared_ptr<const StatusView> view_;
  uint64_t generations_ = 0;
  std::map<uint32_t, std::string> owner_;   // stats id -> "vip:port/proto node:nodePort"
  std::map<uint32_t, Raw> baseline_;
  std::map<uint32_t, Raw> last_raw_;        // at the previous sample
  std::map<uint32_t, TrafficRates> rates_;
  std::chrono::steady_clock::time_point last_sample_{};
  std::vector<uint64_t> last_busy_cycles_;
  std::vector<double> busy_ratio_;
  ReloadRecord reload_;
};

}  // namespace ng::control
