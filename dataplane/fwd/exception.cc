// VIP announcements: which VIPs are due for a gratuitous ARP (IPv4) or an unsolicited
// Neighbor Advertisement (IPv6), a bounded number per tick.
// The classification of frames for the kernel lives in processor.cc, next to the
// decisions it must come after (fwd/exception.h lists the order).

#include "dataplane/fwd/processor.h"

#include <algorithm>

#include "dataplane/pkt/rewrite.h"
#include "dataplane/pkt/rewrite6.h"

namespace ng::fwd {

// Why announce at all: a VIP that moves to this box (a new Service, a failover from
// another box, a restart with a new MAC) is reached through whatever MAC the router and
// the clients cached for it, until their entry expires - up to minutes of black hole.
// An announcement updates every cache on the segment at once. Why periodically too:
// announcements can be lost, a router may have been rebooting, and a switch forgets a
// silent MAC after its aging time (300 s by default): a repeat every garp interval keeps
// them right without waiting for a client's ARP.
// Why bounded: 2,000 Services created by one kubectl apply arrive in one generation;
// 2,000 frames at once would overflow the external port's TX queue and the neighbours'
// ARP input queues (Linux drops beyond 100 unresolved per device by default).
namespace {

// One announcement round over `count` VIPs of a family (appeared in the generations of
// `since`, or all in snap.generation when the sizes differ): `emit(i)` for each VIP due,
// at most `limit` per call. Shared by gratuitous ARP and unsolicited NA; each family has
// its own GarpState, so their cursors and rounds never mix.
template <class Emit>
size_t announceRound(GarpState& g, const ForwardingSnapshot& snap, uint32_t now_ms, size_t count,
                     const std::vector<uint64_t>& since_of, size_t limit, Emit emit) noexcept {
  if (snap.garp_interval_ms != 0 &&
      (!g.periodic_armed ||
       static_cast<int32_t>(g.next_periodic_ms - now_ms) > static_cast<int32_t>(snap.garp_interval_ms))) {
    // First use, or the interval shrank by a reload: the next full round is one interval away.
    g.periodic_armed = true;
    g.next_periodic_ms = now_ms + snap.garp_interval_ms;
  }
  if (g.scanning && g.scan_generation != snap.generation) {
    // The VIP list changed under the scan: walk the new one from the start (VIPs already
    // announced by this scan may be announced twice, which is harmless).
    g.scan_generation = snap.generation;
    g.seen_generation = snap.generation;
    g.cursor = 0;
  }
  if (!g.scanning) {
    if (snap.generation != g.seen_generation) {
      g.seen_generation = snap.generation;
      g.scan_all = false;
    } else if (snap.garp_interval_ms != 0 && static_cast<int32_t>(now_ms - g.next_periodic_ms) >= 0) {
      g.scan_all = true;
    } else {
      return 0;
    }
    g.scanning = true;
    g.scan_generation = snap.generation;
    g.cursor = 0;
  }

  const bool have_since = since_of.size() == count;
  size_t n = 0;
  for (uint32_t examined = 0; g.cursor < count && n < limit && examined < kGarpExaminePerTick; ++examined) {
    const uint32_t i = g.cursor++;
    const uint64_t since = have_since ? since_of[i] : snap.generation;
    if (g.scan_all || g.announced == GarpState::kNone || since > g.announced) {
      emit(i, n++);
    }
  }
  if (g.cursor >= count) {
    g.scanning = false;
    g.announced = g.scan_generation;
    if (g.scan_all) g.next_periodic_ms = now_ms + snap.garp_interval_ms;
  }
  return n;
}

}  // namespace

size_t announceVips(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                    std::span<ArpRequest> requests) noexcept {
  const size_t limit = std::min<size_t>(requests.size(), kGarpPerTick);
  return announceRound(ctx.garp, snap, now_ms, snap.vips.size(), snap.vip_since, limit, [&](uint32_t i, size_t k) {
    requests[k] = ArpRequest{.port = ctx.external_port, .target_ip = snap.vips[i]};
  });
}

// IPv6 VIPs, for the same reasons as gratuitous ARP: a neighbour cache entry for a VIP
// that moved here stays STALE/REACHABLE on the old MAC until it is probed, and the
// unsolicited NA with Override (RFC 4861 7.2.6) replaces it at once. Same pace, same
// bound, a round state of its own (ctx.garp6).
size_t announceVips6(WorkerContext& ctx, const ForwardingSnapshot& snap, uint32_t now_ms,
                     std::span<NsRequest> requests) noexcept {
  const size_t limit = std::min<size_t>(requests.size(), kGarpPerTick);
  return announceRound(ctx.garp6, snap, now_ms, snap.vips6.size(), snap.vip_since6, limit,
                       [&](uint32_t i, size_t k) {
                         requests[k] = NsRequest{.port = ctx.external_port, .target_ip = snap.vips6[i]};
                       });
}

size_t writeUnsolicitedNa(const PortInfo& port, const Ip6& vip, std::span<std::byte> frame) noexcept {
  return pkt::writeUnsolicitedNaFrame(frame, port.mac, port.link_local6, vip);
}

size_t writeGratuitousArp(const PortInfo& port, uint32_t vip, std::span<std::byte> frame) noexcept {
  return pkt::writeArpRequestFrame(frame, port.mac, vip, vip);
}

}  // namespace ng::fwd
