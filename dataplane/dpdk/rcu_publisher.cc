#include "dataplane/dpdk/rcu_publisher.h"

#include <rte_errno.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_pause.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "dataplane/dpdk/eal.h"

namespace ng::dpdk {

RcuPublisher::RcuPublisher(uint32_t max_threads) : max_threads_(max_threads) {
  if (max_threads == 0) throw std::invalid_argument("RcuPublisher needs at least one reader");
  const size_t size = rte_rcu_qsbr_get_memsize(max_threads);
  if (size <= 1) {  // 1 = error (rte_rcu_qsbr.h)
    throw std::runtime_error("rte_rcu_qsbr_get_memsize(" + std::to_string(max_threads) +
                             ") failed: " + rte_strerror(rte_errno));
  }
  qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("ng_rcu_qsbr", size, RTE_CACHE_LINE_SIZE));
  if (qsbr_ == nullptr) {
    throw std::runtime_error("rte_zmalloc of " + std::to_string(size) +
                             " bytes for the RCU variable failed");
  }
  if (rte_rcu_qsbr_init(qsbr_, max_threads) != 0) {
    const int err = rte_errno;
    rte_free(qsbr_);
    throw std::runtime_error(std::string("rte_rcu_qsbr_init failed: ") + rte_strerror(err));
  }
}

RcuPublisher::~RcuPublisher() {
  delete snapshot_.exchange(nullptr, std::memory_order_acq_rel);
  rte_free(qsbr_);
}

void RcuPublisher::registerWorker(uint32_t thread_id) {
  if (thread_id >= max_threads_) {
    throw std::invalid_argument("RCU thread id " + std::to_string(thread_id) +
                                " >= " + std::to_string(max_threads_) + " readers");
  }
  if (rte_rcu_qsbr_thread_register(qsbr_, thread_id) != 0) {
    throw std::runtime_error(std::string("rte_rcu_qsbr_thread_register failed: ") +
                             rte_strerror(rte_errno));
  }
}

void RcuPublisher::unregisterWorker(uint32_t thread_id) noexcept {
  if (thread_id < max_threads_) rte_rcu_qsbr_thread_unregister(qsbr_, thread_id);
}

const fwd::ForwardingSnapshot* RcuPublisher::current() const noexcept {
  return snapshot_.load(std::memory_order_acquire);
}

void RcuPublisher::publish(std::unique_ptr<const fwd::ForwardingSnapshot> next) {
  // Release: the snapshot's contents are visible before the pointer is.
  const fwd::ForwardingSnapshot* old =
      snapshot_.exchange(next.release(), std::memory_order_acq_rel);
  if (old == nullptr) return;  // nothing to reclaim, no grace period needed

  // rte_rcu_qsbr_synchronize() with the waiting split out: its busy spin would take a
  // core from the workers when control shares one with them (tests, small boxes), and a
  // stuck worker would hang the control thread silently. The token is taken after the
  // pointer store, so every reader that reports it has dropped `old`.
  const uint64_t token = rte_rcu_qsbr_start(qsbr_);
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_warning = start + std::chrono::seconds(1);
  for (unsigned spins = 0; rte_rcu_qsbr_check(qsbr_, token, false) == 0; ++spins) {
    if (spins < 256) {
      rte_pause();  // a busy worker reports within one burst: usually a few microseconds
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    if (const auto now = Clock::now(); now >= next_warning) {
      next_warning = now + std::chrono::seconds(1);
      log(RTE_LOG_WARNING,
          "snapshot generation %llu: grace period still open after %lld ms (a worker is "
          "online but not reporting quiescent states)",
          static_cast<unsigned long long>(old->generation),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count()));
    }
  }
  delete old;
}

}  // namespace ng::dpdk
