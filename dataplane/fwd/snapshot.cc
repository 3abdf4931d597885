#include "dataplane/fwd/snapshot.h"

#include <algorithm>
#include <bit>

namespace ng::fwd {
namespace {

uint32_t indexHash(uint32_t vip, uint16_t port, uint8_t proto) noexcept {
  uint64_t x = (uint64_t{vip} << 32) | (uint64_t{port} << 8) | proto;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

}  // namespace

void ForwardingSnapshot::finalize() {
  std::sort(vips.begin(), vips.end());
  vips.erase(std::unique(vips.begin(), vips.end()), vips.end());
  for (const ServicePort& sp : service_ports) {
    if (!std::binary_search(vips.begin(), vips.end(), sp.vip)) {
      vips.insert(std::upper_bound(vips.begin(), vips.end(), sp.vip), sp.vip);
    }
  }
  const size_t slots = std::bit_ceil(std::max<size_t>(16, service_ports.size() * 2));
  index_.assign(slots, IndexSlot{});
  index_mask_ = static_cast<uint32_t>(slots - 1);
  for (uint32_t i = 0; i < service_ports.size(); ++i) {
    ServicePort& sp = service_ports[i];
    sp.id = i;
    uint32_t s = indexHash(sp.vip, sp.port, sp.proto) & index_mask_;
    while (index_[s].used) s = (s + 1) & index_mask_;
    index_[s] = IndexSlot{.vip = sp.vip, .port = sp.port, .proto = sp.proto, .used = 1, .position = i};
  }
}

const ServicePort* ForwardingSnapshot::find(uint32_t vip, uint16_t port, uint8_t proto) const noexcept {
  if (index_.empty()) return nullptr;
  for (uint32_t s = indexHash(vip, port, proto) & index_mask_;; s = (s + 1) & index_mask_) {
    const IndexSlot& slot = index_[s];
    if (!slot.used) return nullptr;
    if (slot.vip == vip && slot.port == port && slot.proto == proto) return &service_ports[slot.position];
  }
}

bool ForwardingSnapshot::isVip(uint32_t ip) const noexcept {
  return std::binary_search(vips.begin(), vips.end(), ip);
}

}  // namespace ng::fwd
