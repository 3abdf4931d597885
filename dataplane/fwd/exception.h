#pragma once
// Per-worker state of the exception path (frames for the box itself handed to the
// kernel) and of VIP announcements (gratuitous ARP). No DPDK; the decisions live in
// fwd/processor.cc (which frames go to the kernel) and fwd/exception.cc (announcements),
// the interfaces themselves in dataplane/dpdk (a net_tap port per data port).
//
// Which frames go to the kernel (Action::kToKernel, out_port = the data port slot whose
// kernel interface takes it), decided after everything the data plane does itself:
//   1. a flow-table hit (either direction) is forwarded, never given to the kernel;
//   2. VIP traffic is balanced, answered (ICMP echo) or dropped, never given to the kernel;
//   3. a node's packet to a SNAT address is a full-NAT reply (its flow, its owner worker,
//      or no_flow) when its destination port is in the SNAT allocator's range - even when
//      the SNAT address is the port's own address. Only a port outside that range can be
//      the kernel's (control/main.cc keeps the kernel's ephemeral ports out of the SNAT
//      range when the two addresses coincide);
//   4. the port's own address: ICMP echo requests are answered by the worker (no kernel
//      round trip for the most common probe); everything else (TCP/UDP to the box, other
//      ICMP, other protocols) goes to the port's kernel interface, rate-limited;
//   5. ARP: the worker answers requests for the port's address itself; a reply addressed
//      to the port's address is learned as before *and* handed to the kernel, which
//      resolves its own next hops (Action::kShareToKernel with several workers: the
//      other workers get their copies too).
// Without an exception path on the port, step 4 is a drop (local_no_exception_path) and
// step 5 only learns, as before.
//
// Threading: every object here belongs to one worker (inside its WorkerContext).

#include <cstdint>

namespace ng::fwd {

// Token bucket bounding the frames one worker hands to the kernel: a flood to the box's
// address must cost the forwarding path a counter increment per frame, not the kernel's
// time or the tap queue. Milli-token credit, so rates below 1000/s work with a
// millisecond clock.
struct ExceptionLimiter {
  uint32_t rate_pps = 0;   // 0 = nothing passes (set by configure())
  uint32_t burst = 0;      // frames that may pass at once after a quiet spell
  uint64_t credit_milli = 0;
  uint32_t last_ms = 0;

  // Control thread, before traffic. Starts full.
  void configure(uint32_t rate, uint32_t burst_frames, uint32_t now_ms) noexcept {
    rate_pps = rate;
    burst = burst_frames;
    credit_milli = uint64_t{burst_frames} * 1000;
    last_ms = now_ms;
  }

  // True when one more frame may go to the kernel now (and takes its token).
  [[nodiscard]] bool admit(uint32_t now_ms) noexcept {
    const uint32_t elapsed = now_ms - last_ms;  // modulo 2^32
    if (elapsed != 0) {
      last_ms = now_ms;
      const uint64_t cap = uint64_t{burst} * 1000;
      // Capping the elapsed time keeps the product small; a full bucket is reached anyway.
      const uint64_t add = uint64_t{elapsed < 100'000 ? elapsed : 100'000} * rate_pps;
      credit_milli = credit_milli + add > cap ? cap : credit_milli + add;
    }
    if (credit_milli < 1000) return false;
    credit_milli -= 1000;
    return true;
  }
};

// Gratuitous ARP announcements of the VIPs (fwd::announceVips). A scan walks the
// snapshot's sorted VIP list with a cursor, a bounded number of entries per slow tick:
// a scan over new VIPs starts when a new generation arrives, a scan over every VIP each
// garp interval. VIPs "appeared" in the generation ForwardingSnapshot::vip_since says;
// a VIP is new to this worker when that is later than the last generation a completed
// scan covered, so VIPs of generations a worker never loaded (two publications between
// its polls) are still announced.
struct GarpState {
  static constexpr uint64_t kNone = ~uint64_t{0};
  uint64_t announced = kNone;       // VIPs appeared in generations <= this were announced
  uint64_t seen_generation = kNone; // last generation a new-VIP scan was started for
  uint64_t scan_generation = 0;     // generation the running scan walks
  uint32_t cursor = 0;
  bool scanning = false;
  bool scan_all = false;            // periodic: every VIP, not only new ones
  bool periodic_armed = false;
  uint32_t next_periodic_ms = 0;
};

// Gratuitous ARPs written per slow tick (1 ms): 4000/s at most, so 2,000 new VIPs are
// announced within half a second without bursting the external port's TX queue.
inline constexpr uint32_t kGarpPerTick = 4;
// VIP entries a scan examines per tick (announced or skipped): bounds the tick's work
// with hundreds of thousands of VIPs.
inline constexpr uint32_t kGarpExaminePerTick = 256;

}  // namespace ng::fwd
