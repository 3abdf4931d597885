#include "dataplane/dpdk/ring.h"

#include <rte_errno.h>
#include <rte_mbuf.h>

#include <stdexcept>

namespace ng::dpdk {

MbufRing::MbufRing(const std::string& name, uint32_t size) {
  // Multi-producer (any worker may hand a frame over), single consumer (the owner).
  ring_ = rte_ring_create(name.c_str(), size, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (ring_ == nullptr) {
    throw std::runtime_error("rte_ring_create(" + name + ", " + std::to_string(size) +
                             ") failed: " + rte_strerror(rte_errno));
  }
}

MbufRing::~MbufRing() {
  void* obj = nullptr;
  while (rte_ring_dequeue(ring_, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
  rte_ring_free(ring_);
}

}  // namespace ng::dpdk
