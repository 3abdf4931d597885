#include <algorithm>
#include <bit>
#include <iterator>

#include "dataplane/fwd/snapshot.h"

namespace ng::fwd {
namespace {

uint32_t indexHash6(const Ip6& vip, uint16_t port, uint8_t proto) noexcept {
  uint64_t x = vip.hi * 0x9e3779b97f4a7c15ULL ^ vip.lo ^ (uint64_t{port} << 8 | proto) * 0xc2b2ae3d27d4eb4fULL;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

}  // namespace

SourceRange6 prefixRange6(const Ip6& address, uint8_t length) noexcept {
  const unsigned len = std::min<unsigned>(length, 128);
  return SourceRange6{.first = pkt::ip6Mask(address, len), .last = pkt::ip6LastOf(pkt::ip6Mask(address, len), len)};
}

std::vector<SourceRange6> mergeSourceRanges6(std::vector<SourceRange6> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const SourceRange6& a, const SourceRange6& b) {
    return a.first < b.first || (a.first == b.first && a.last < b.last);
  });
  constexpr Ip6 kAllOnes{.hi = ~uint64_t{0}, .lo = ~uint64_t{0}};
  std::vector<SourceRange6> merged;
  for (const SourceRange6& r : ranges) {
    bool adjacent = false;
    if (!merged.empty() && merged.back().last != kAllOnes) {
      const Ip6& l = merged.back().last;
      const Ip6 next = l.lo == ~uint64_t{0} ? Ip6{.hi = l.hi + 1, .lo = 0} : Ip6{.hi = l.hi, .lo = l.lo + 1};
      adjacent = r.first == next;
    }
    if (!merged.empty() && (r.first <= merged.back().last || adjacent)) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

bool ServicePort6::allowsSource(const Ip6& src) const noexcept {
  if (!restrict_sources) return true;
  auto it = std::upper_bound(source_ranges.begin(), source_ranges.end(), src,
                             [](const Ip6& ip, const SourceRange6& r) { return ip < r.first; });
  return it != source_ranges.begin() && src <= std::prev(it)->last;
}

const Backend6* ServicePort6::servingBackend(const Ip6& node_ip, uint16_t node_port) const noexcept {
  const Backend6* found = nullptr;
  if (backends_sorted) {
    auto it = std::lower_bound(backends.begin(), backends.end(), node_ip,
                               [](const Backend6& b, const Ip6& ip) { return b.node_ip < ip; });
    if (it != backends.end() && it->node_ip == node_ip && it->node_port == node_port) found = &*it;
  } else {
    for (const Backend6& b : backends) {
      if (b.node_ip == node_ip && b.node_port == node_port) {
        found = &b;
        break;
      }
    }
  }
  return found != nullptr && found->weight > 0 ? found : nullptr;
}

void ForwardingSnapshot::finalize6() {
  std::sort(vips6.begin(), vips6.end());
  vips6.erase(std::unique(vips6.begin(), vips6.end()), vips6.end());
  for (const ServicePort6& sp : service_ports6) {
    if (!std::binary_search(vips6.begin(), vips6.end(), sp.vip)) {
      vips6.insert(std::upper_bound(vips6.begin(), vips6.end(), sp.vip), sp.vip);
    }
  }
  const size_t slots = std::bit_ceil(std::max<size_t>(16, service_ports6.size() * 2));
  index6_.assign(slots, IndexSlot6{});
  index6_mask_ = static_cast<uint32_t>(slots - 1);
  for (uint32_t i = 0; i < service_ports6.size(); ++i) {
    ServicePort6& sp = service_ports6[i];
    sp.id = i;
    sp.backends_sorted = std::adjacent_find(sp.backends.begin(), sp.backends.end(),
                                            [](const Backend6& a, const Backend6& b) {
                                              return a.node_ip >= b.node_ip;
                                            }) == sp.backends.end();
    uint32_t s = indexHash6(sp.vip, sp.port, sp.proto) & index6_mask_;
    while (index6_[s].used) s = (s + 1) & index6_mask_;
    index6_[s] = IndexSlot6{.vip = sp.vip, .port = sp.port, .proto = sp.proto, .used = 1, .position = i};
  }
}

const ServicePort6* ForwardingSnapshot::find6(const Ip6& vip, uint16_t port, uint8_t proto) const noexcept {
  if (index6_.empty()) return nullptr;
  for (uint32_t s = indexHash6(vip, port, proto) & index6_mask_;; s = (s + 1) & index6_mask_) {
    const IndexSlot6& slot = index6_[s];
    if (!slot.used) return nullptr;
    if (slot.vip == vip && slot.port == port && slot.proto == proto) return &service_ports6[slot.position];
  }
}

bool ForwardingSnapshot::isVip6(const Ip6& ip) const noexcept {
  return std::binary_search(vips6.begin(), vips6.end(), ip);
}

bool ForwardingSnapshot::isSnatAddress6(const Ip6& ip) const noexcept {
  return std::find(snat_addresses6.begin(), snat_addresses6.end(), ip) != snat_addresses6.end();
}

}  // namespace ng::fwd
