#include "dataplane/fwd/snapshot.h"

#include <algorithm>
#include <bit>
#include <iterator>

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

SourceRange prefixRange(uint32_t address, uint8_t length) noexcept {
  const uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - std::min<uint8_t>(length, 32));
  return SourceRange{.first = address & mask, .last = (address & mask) | ~mask};
}

std::vector<SourceRange> mergeSourceRanges(std::vector<SourceRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const SourceRange& a, const SourceRange& b) {
    return a.first < b.first || (a.first == b.first && a.last < b.last);
  });
  std::vector<SourceRange> merged;
  for (const SourceRange& r : ranges) {
    // Overlapping or adjacent (r.first == last + 1) ranges become one; the `last + 1`
    // test must not wrap at 255.255.255.255.
    if (!merged.empty() && (r.first <= merged.back().last ||
                            (merged.back().last != ~uint32_t{0} && r.first == merged.back().last + 1))) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

bool ServicePort::allowsSource(uint32_t src) const noexcept {
  if (source_ranges.empty()) return true;
  // The last range starting at or below src is the only one that can hold it.
  auto it = std::upper_bound(source_ranges.begin(), source_ranges.end(), src,
                             [](uint32_t ip, const SourceRange& r) { return ip < r.first; });
  return it != source_ranges.begin() && src <= std::prev(it)->last;
}

const Backend* ServicePort::servingBackend(uint32_t node_ip, uint16_t node_port) const noexcept {
  const Backend* found = nullptr;
  if (backends_sorted) {
    auto it = std::lower_bound(backends.begin(), backends.end(), node_ip,
                               [](const Backend& b, uint32_t ip) { return b.node_ip < ip; });
    if (it != backends.end() && it->node_ip == node_ip) found = &*it;
    if (found != nullptr && found->node_port != node_port) found = nullptr;
  } else {
    for (const Backend& b : backends) {
      if (b.node_ip == node_ip && b.node_port == node_port) {
        found = &b;
        break;
      }
    }
  }
  return found != nullptr && found->weight > 0 ? found : nullptr;
}

void ForwardingSnapshot::finalize() {
  std::sort(cut_stats_ids.begin(), cut_stats_ids.end());
  cut_stats_ids.erase(std::unique(cut_stats_ids.begin(), cut_stats_ids.end()), cut_stats_ids.end());
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
    // Strictly increasing node addresses: servingBackend() may binary-search.
    sp.backends_sorted = std::adjacent_find(sp.backends.begin(), sp.backends.end(),
                                            [](const Backend& a, const Backend& b) {
                                              return a.node_ip >= b.node_ip;
                                            }) == sp.backends.end();
    uint32_t s = indexHash(sp.vip, sp.port, sp.proto) & index_mask_;
    while (index_[s].used) s = (s + 1) & index_mask_;
    index_[s] = IndexSlot{.vip = sp.vip, .port = sp.port, .proto = sp.proto, .used = 1, .position = i};
  }
  finalize6();
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
