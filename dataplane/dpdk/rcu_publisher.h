#pragma once
// The real SnapshotPublisher: one atomic pointer store for readers, rte_rcu_qsbr for the
// grace period, and the old generation freed on the control thread (DESIGN.md sec. 2,
// STYLE.md examples 4 and 5).
//
// Readers (workers, one RCU thread id each, 0 <= id < max_threads):
//   registerWorker(id) once (Worker's constructor does it), then on the worker lcore
//   rte_rcu_qsbr_thread_online(); per burst: load snapshotPointer() with acquire, use
//   the snapshot, rte_rcu_qsbr_quiescent() - after which the pointer is dead to it;
//   rte_rcu_qsbr_thread_offline() before the lcore returns.
// Writer (the control thread only, one at a time): publish(). The writer must not be an
//   online reader itself, or it would wait for its own quiescent report forever.
// Memory: the publisher owns the current snapshot; publish() frees the previous one after
//   every online reader has reported quiescent once since the pointer store. A reader
//   that stays online without reporting (a stuck worker) blocks publish(); it logs a
//   warning every second while it waits. Readers that are registered but offline (not
//   launched yet, or stopped) do not hold it up.
// Generations: readers apply per-snapshot state when `generation` changes, so every
//   published snapshot must carry a generation different from the current one.

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/fwd/publisher.h"
#include "dataplane/fwd/snapshot.h"

namespace ng::dpdk {

class RcuPublisher final : public fwd::SnapshotPublisher {
 public:
  // Allocates and initialises the QSBR variable for `max_threads` readers (thread ids
  // 0..max_threads-1). Throws std::runtime_error when that fails (start-up only).
  explicit RcuPublisher(uint32_t max_threads);
  // Frees the current snapshot and the QSBR variable. Workers must have stopped.
  ~RcuPublisher() override;
  RcuPublisher(const RcuPublisher&) = delete;
  RcuPublisher& operator=(const RcuPublisher&) = delete;

  // Control thread. See the header comment; returns after the grace period.
  void publish(std::unique_ptr<const fwd::ForwardingSnapshot> next) override;
  [[nodiscard]] const fwd::ForwardingSnapshot* current() const noexcept override;

  // Registers reader `thread_id` (idempotent). Throws std::invalid_argument when
  // thread_id >= maxThreads(). Control thread, before the reader goes online.
  void registerWorker(uint32_t thread_id);
  // Unregisters an offline reader. Control thread.
  void unregisterWorker(uint32_t thread_id) noexcept;

  // What workers read: the pointer (load with memory_order_acquire, once per burst) and
  // the QSBR variable they report to. Valid as long as the publisher lives.
  [[nodiscard]] const std::atomic<const fwd::ForwardingSnapshot*>& snapshotPointer()
      const noexcept {
    return snapshot_;
  }
  [[nodiscard]] rte_rcu_qsbr* qsbr() const noexcept { return qsbr_; }
  [[nodiscard]] uint32_t maxThreads() const noexcept { return max_threads_; }

 private:
  // Hot: read by every worker every burst; keep it off the control thread's lines.
  alignas(64) std::atomic<const fwd::ForwardingSnapshot*> snapshot_{nullptr};
  alignas(64) rte_rcu_qsbr* qsbr_ = nullptr;
  uint32_t max_threads_ = 0;
};

}  // namespace ng::dpdk
