#pragma once
// RAII owner of an rte_ring (STYLE.md example 14): the per-worker redirect rings.
//
// Threading: create and destroy on the control thread at start-up/shutdown; workers
// borrow the raw rte_ring*. Destroy only after every worker that enqueues to or dequeues
// from it has stopped; the destructor frees the mbufs still in it.
// Failure: the constructor throws std::runtime_error naming the ring (start-up only).

#include <rte_ring.h>

#include <cstdint>
#include <string>

namespace ng::dpdk {

class MbufRing {
 public:
  // A ring of `size` (a power of two) mbuf pointers that many lcores may enqueue to and
  // one dequeues from (RING_F_SC_DEQ): one worker's inbox.
  MbufRing(const std::string& name, uint32_t size);
  ~MbufRing();
  MbufRing(const MbufRing&) = delete;
  MbufRing& operator=(const MbufRing&) = delete;

  [[nodiscard]] rte_ring* get() const noexcept { return ring_; }

 private:
  rte_ring* ring_ = nullptr;
};

}  // namespace ng::dpdk
