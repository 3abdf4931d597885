#include "dataplane/fwd/neighbor.h"

#include <bit>
#include <stdexcept>

namespace ng::fwd {

template <class Addr>
BasicNeighborTable<Addr>::BasicNeighborTable(uint32_t sets) {
  if (sets == 0 || !std::has_single_bit(sets)) throw std::invalid_argument("neighbor sets must be a power of two");
  entries_.resize(size_t{sets} * kWays);
  set_mask_ = sets - 1;
}

template <class Addr>
typename BasicNeighborTable<Addr>::Entry* BasicNeighborTable<Addr>::find(const Addr& ip) noexcept {
  Entry* set = &entries_[size_t{setOf(ip)} * kWays];
  for (uint32_t w = 0; w < kWays; ++w) {
    if (set[w].used && set[w].ip == ip) return &set[w];
  }
  return nullptr;
}

template <class Addr>
const typename BasicNeighborTable<Addr>::Entry* BasicNeighborTable<Addr>::find(const Addr& ip) const noexcept {
  return const_cast<BasicNeighborTable*>(this)->find(ip);
}

template <class Addr>
typename BasicNeighborTable<Addr>::Entry* BasicNeighborTable<Addr>::victim(const Addr& ip, uint32_t now_ms) noexcept {
  Entry* set = &entries_[size_t{setOf(ip)} * kWays];
  Entry* best = nullptr;
  uint32_t best_age = 0;
  for (uint32_t w = 0; w < kWays; ++w) {
    Entry& e = set[w];
    if (!e.used) return &e;
    if (e.is_static) continue;
    const uint32_t age = now_ms - (e.resolved ? e.learned_ms : e.requested_ms);
    if (best == nullptr || age > best_age) {
      best = &e;
      best_age = age;
    }
  }
  return best;
}

template <class Addr>
void BasicNeighborTable<Addr>::learn(const Addr& ip, const Mac& mac, uint32_t now_ms, bool is_static) noexcept {
  Entry* e = find(ip);
  if (e != nullptr && e->is_static && !is_static) return;  // configuration wins over the wire
  if (e == nullptr) {
    e = victim(ip, now_ms);
    if (e == nullptr) return;
    *e = Entry{};
  }
  e->ip = ip;
  e->mac = mac;
  e->learned_ms = now_ms;
  e->used = true;
  e->resolved = true;
  e->requested = false;
  e->is_static = is_static;
}

template <class Addr>
bool BasicNeighborTable<Addr>::want(const Addr& ip, uint32_t now_ms) noexcept {
  Entry* e = find(ip);
  if (e != nullptr && e->resolved) return false;
  if (e == nullptr) {
    e = victim(ip, now_ms);
    if (e == nullptr) return false;
    *e = Entry{};
    e->ip = ip;
    e->used = true;
  } else if (e->requested && now_ms - e->requested_ms < kRetryMs) {
    return false;
  }
  e->requested = true;
  e->requested_ms = now_ms;
  return true;
}

template <class Addr>
bool BasicNeighborTable<Addr>::refreshDue(const Addr& ip, uint32_t now_ms) noexcept {
  Entry* e = find(ip);
  if (e == nullptr || !e->resolved) return want(ip, now_ms);
  if (e->is_static || now_ms - e->learned_ms < kRefreshMs) return false;
  if (e->requested && now_ms - e->requested_ms < kRetryMs) return false;
  e->requested = true;
  e->requested_ms = now_ms;
  return true;
}

template <class Addr>
bool BasicNeighborTable<Addr>::pending(const Addr& ip) const noexcept {
  const Entry* e = find(ip);
  return e != nullptr && e->requested;
}

template <class Addr>
uint32_t BasicNeighborTable<Addr>::size() const noexcept {
  uint32_t n = 0;
  for (const Entry& e : entries_) n += e.used ? 1 : 0;
  return n;
}

template class BasicNeighborTable<uint32_t>;
template class BasicNeighborTable<pkt::Ip6>;

}  // namespace ng::fwd
