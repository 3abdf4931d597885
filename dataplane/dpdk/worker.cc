#include "dataplane/dpdk/worker.h"

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <algorithm>
#include <array>
#include <bit>
#include <span>
#include <stdexcept>
#include <string>

namespace ng::dpdk {

using fwd::DropReason;

Worker::Worker(fwd::WorkerContext& ctx, std::vector<QueueRef> queues, RcuPublisher& rcu,
               uint32_t rcu_thread_id, std::atomic<bool>& stop, rte_mempool* pool, Options options,
               WorkerRings rings, KernelQueues kernel)
    : ctx_(ctx),
      snapshot_(&rcu.snapshotPointer()),
      qsbr_(rcu.qsbr()),
      rcu_thread_id_(rcu_thread_id),
      stop_(stop),
      pool_(pool),
      options_(options),
      rcu_(rcu) {
  if (queues.size() != ctx.ports.size()) {
    throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": " +
                                std::to_string(queues.size()) + " queue pairs for " +
                                std::to_string(ctx.ports.size()) + " port slots");
  }
  if (queues.empty() || queues.size() > 255) {
    throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": 1..255 port slots");
  }
  if (pool == nullptr) throw std::invalid_argument("worker: no mempool");
  for (const QueueRef& q : queues) {
    if (!rte_eth_dev_is_valid_port(q.port_id)) {
      throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": no port id " +
                                  std::to_string(q.port_id));
    }
  }
  if (!rings.peers.empty() || ctx.steering.workers() > 1) {
    if (rings.peers.size() != ctx.steering.workers() || ctx.id >= rings.peers.size()) {
      throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": " + std::to_string(rings.peers.size()) +
                                  " redirect rings for " + std::to_string(ctx.steering.workers()) + " workers");
    }
    for (rte_ring* r : rings.peers) {
      if (r == nullptr) throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": null redirect ring");
    }
    inbox_ = rings.peers[ctx.id];
    handoffs_.resize(rings.peers.size());
    for (size_t w = 0; w < rings.peers.size(); ++w) handoffs_[w].ring = rings.peers[w];
  }
  if (!kernel.slots.empty()) {
    if (kernel.slots.size() != queues.size()) {
      throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": " + std::to_string(kernel.slots.size()) +
                                  " kernel interface entries for " + std::to_string(queues.size()) + " port slots");
    }
    kernel_slots_.resize(kernel.slots.size());
    for (size_t i = 0; i < kernel.slots.size(); ++i) {
      kernel_slots_[i].port_id = kNoPort;
      kernel_slots_[i].kernel = true;
      if (!kernel.slots[i]) continue;
      if (!rte_eth_dev_is_valid_port(kernel.slots[i]->port_id)) {
        throw std::invalid_argument("worker " + std::to_string(ctx.id) + ": no kernel interface port id " +
                                    std::to_string(kernel.slots[i]->port_id));
      }
      kernel_slots_[i].port_id = kernel.slots[i]->port_id;
      kernel_slots_[i].queue_id = kernel.slots[i]->queue_id;
    }
  }
  const uint64_t hz = rte_get_tsc_hz();
  cycles_per_ms_ = hz / 1000 != 0 ? hz / 1000 : 1;
  drain_cycles_ = hz / 1'000'000 * options.drain_us;
  tick_cycles_ = hz / 1'000'000 * options.slow_tick_us;

  slots_.resize(queues.size());
  for (size_t i = 0; i < queues.size(); ++i) {
    slots_[i].port_id = queues[i].port_id;
    slots_[i].queue_id = queues[i].queue_id;
  }
  rcu_.registerWorker(rcu_thread_id);  // throws on a bad id; nothing to undo before it
}

Worker::~Worker() {
  for (std::vector<Slot>* slots : {&slots_, &kernel_slots_}) {
    for (Slot& s : *slots) {
      if (s.tx_count != 0) rte_pktmbuf_free_bulk(s.tx, s.tx_count);
      s.tx_count = 0;
    }
  }
  for (Handoff& h : handoffs_) {
    if (h.count != 0) rte_pktmbuf_free_bulk(h.pkts, h.count);
    h.count = 0;
  }
  rcu_.unregisterWorker(rcu_thread_id_);
}

int Worker::launch(void* worker) noexcept { return static_cast<Worker*>(worker)->run(); }

void Worker::launchOn(unsigned lcore_id) {
  if (lcore_id == rte_get_main_lcore() || !rte_lcore_is_enabled(lcore_id)) {
    throw std::runtime_error("worker " + std::to_string(ctx_.id) + ": lcore " +
                             std::to_string(lcore_id) + " is not a worker lcore of this EAL");
  }
  if (int ret = rte_eal_remote_launch(&Worker::launch, this, lcore_id); ret != 0) {
    throw std::runtime_error("worker " + std::to_string(ctx_.id) +
                             ": rte_eal_remote_launch on lcore " + std::to_string(lcore_id) + ": " +
                             rte_strerror(-ret));
  }
  lcore_id_ = lcore_id;
}

int Worker::join() noexcept {
  if (lcore_id_ == ~0u) return 0;
  const int ret = rte_eal_wait_lcore(lcore_id_);
  lcore_id_ = ~0u;
  return ret;
}

int Worker::run() noexcept {
  online();
  last_tick_tsc_ = rte_get_tsc_cycles();
  while (!stop_.load(std::memory_order_acquire)) {
    const bool busy = pollOnce();  // RX, process, TX buffers, TSC drain, quiescent state
    if (last_poll_tsc_ - last_tick_tsc_ >= tick_cycles_) {
      slowTick();  // flow expiry, ARP requests, gauges, quiescent state
    }
    idleBackoff(busy);  // sleeps only after a run of empty polls
  }
  flushTx();
  if (handoff_pending_) sendHandoffs();
  offline();
  return 0;
}

void Worker::online() noexcept { rte_rcu_qsbr_thread_online(qsbr_, rcu_thread_id_); }
void Worker::offline() noexcept { rte_rcu_qsbr_thread_offline(qsbr_, rcu_thread_id_); }

const fwd::ForwardingSnapshot* Worker::acquireSnapshot(uint32_t now_ms) noexcept {
  const fwd::ForwardingSnapshot* snap = snapshot_->load(std::memory_order_acquire);
  // onSnapshot() records the generation in ctx_.applied_generation.
  if (snap != nullptr && snap->generation != ctx_.applied_generation) [[unlikely]] {
    fwd::onSnapshot(ctx_, *snap, now_ms);
  }
  return snap;
}

void Worker::idleBackoff(bool busy) noexcept {
  if (options_.idle_sleep_max_us == 0) return;
  if (busy) {
    idle_streak_ = 0;
    sleep_us_ = 0;
    return;
  }
  if (++idle_streak_ < options_.idle_polls_before_sleep) return;
  // Nothing may wait in a TX buffer while we sleep; the quiescent state was reported by
  // the poll, so a sleeping worker never holds up a grace period by more than one sleep.
  flushTx();
  sleep_us_ = sleep_us_ == 0 ? 1 : std::min(sleep_us_ * 2, options_.idle_sleep_max_us);
  ctx_.counters.idle_sleeps.add();
  rte_delay_us_sleep(sleep_us_);
}

bool Worker::pollOnce() noexcept {
  const uint64_t tsc = rte_get_tsc_cycles();
  last_poll_tsc_ = tsc;
  const uint32_t now_ms = nowMs(tsc);
  const fwd::ForwardingSnapshot* snap = acquireSnapshot(now_ms);
  if (snap == nullptr) [[unlikely]] {
    // Nothing to forward with yet: leave frames in the RX rings (the device drops and
    // counts them when full) rather than dropping them uncounted here.
    rte_rcu_qsbr_quiescent(qsbr_, rcu_thread_id_);
    return false;
  }

  bool busy = false;
  const auto n_slots = static_cast<uint8_t>(slots_.size());
  for (uint8_t slot = 0; slot < n_slots; ++slot) busy |= receive(slot, *snap, tsc, now_ms);
  for (uint8_t slot = 0; slot < kernel_slots_.size(); ++slot) busy |= receiveFromKernel(slot, tsc);
  if (inbox_ != nullptr) {
    if (handoff_pending_) sendHandoffs();
    busy |= drainInbox(*snap, tsc, now_ms);
  }
  drainTx(tsc);
  if (busy) {
    ctx_.counters.busy_polls.add();
    ctx_.counters.busy_cycles.add(rte_get_tsc_cycles() - tsc);  // one TSC read per burst, not per packet
  } else {
    ctx_.counters.idle_polls.add();
  }

  // Last: from here on this worker holds no pointer into `snap`.
  rte_rcu_qsbr_quiescent(qsbr_, rcu_thread_id_);
  return busy;
}

bool Worker::receive(uint8_t slot, const fwd::ForwardingSnapshot& snap, uint64_t tsc,
                     uint32_t now_ms) noexcept {
  Slot& in = slots_[slot];
  static_assert(kBurstSize <= fwd::kMaxBurst, "one RX burst must fit one pipeline burst");
  rte_mbuf* pkts[kBurstSize];
  const uint16_t n = rte_eth_rx_burst(in.port_id, in.queue_id, pkts, kBurstSize);
  if (n == 0) return false;
  const uint64_t bytes = handleBurst(slot, pkts, n, snap, tsc, now_ms, /*from_peer=*/false);
  ctx_.counters.rx_packets.add(n);
  ctx_.counters.rx_bytes.add(bytes);
  return true;
}

uint64_t Worker::handleBurst(uint8_t slot, rte_mbuf** pkts, uint16_t n, const fwd::ForwardingSnapshot& snap,
                             uint64_t tsc, uint32_t now_ms, bool from_peer) noexcept {
  rte_mbuf* dropped[kBurstSize];
  uint16_t n_dropped = 0;
  uint64_t bytes = 0;
  // Map mbufs to spans; chained mbufs never reach the pipeline.
  auto& [frames, held, actions] = scratch_;
  uint16_t n_frames = 0;
  // Tunnel mode prepends its outer header into the headroom: the pipeline may use what
  // every frame of the burst has (RX mbufs: RTE_PKTMBUF_HEADROOM).
  uint16_t headroom = UINT16_MAX;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    bytes += m->pkt_len;
    if (m->nb_segs > 1) [[unlikely]] {
      // The pipeline works on one contiguous span; the pool is sized so a frame of the
      // port's MTU fits one mbuf, so a chain means an oversized (jumbo) frame.
      ctx_.counters.drop(DropReason::kMultiSegment);
      dropped[n_dropped++] = m;
      continue;
    }
    // No prefetch of the frame data: the parse stage reads it right away, and on the
    // benchmark's virtual device (the PMD copies every frame in, so its line is hot)
    // prefetching each frame cost 5-8 % of throughput, issued here or 3 frames ahead
    // (docs/BENCHMARKS.md). A NIC that DMAs into memory may want it back; not measured.
    headroom = std::min(headroom, rte_pktmbuf_headroom(m));
    frames[n_frames] = std::span<std::byte>(rte_pktmbuf_mtod(m, std::byte*), m->data_len);
    held[n_frames++] = m;
  }
  fwd::processBurst(ctx_, snap, slot, std::span(frames.data(), n_frames), std::span(actions.data(), n_frames),
                    now_ms, n_frames != 0 ? headroom : 0);
  const auto n_slots = static_cast<uint8_t>(slots_.size());
  if (n_frames == kBurstSize && wholeBurstTo(actions, n_slots)) {
    // The steady state under load: a full burst, every frame forwarded as it is out of
    // one port whose TX buffer is empty. Sent as it stands, not copied frame by frame
    // into the buffer first. (A full burst of frames: none was dropped above.)
    transmit(slots_[actions[0].out_port], held.data(), n_frames);
    return bytes;
  }
  for (uint16_t i = 0; i < n_frames; ++i) {
    const fwd::Action& action = actions[i];
    if (action.kind == fwd::Action::Kind::kForward) [[likely]] {
      // A tunnel-mode frame (outer header in the headroom) or a frag-needed answer.
      if (action.length != 0) [[unlikely]] reshape(held[i], action);
      if (action.out_port < n_slots) [[likely]] {
        enqueueTx(slots_[action.out_port], held[i], tsc);
        continue;
      }
      ctx_.counters.drop(DropReason::kTxFull);  // no queue for that slot on this worker
    } else if (action.kind >= fwd::Action::Kind::kToKernel) [[unlikely]] {
      // Exception path. An ARP reply for the box: the peers' copies first, then the
      // original to the kernel - unless a peer sent it, which gave the kernel its own.
      const bool share = action.kind == fwd::Action::Kind::kShareToKernel;
      if (share && from_peer) {
        dropped[n_dropped++] = held[i];
        continue;
      }
      if (share) (void)steer(fwd::Action{.kind = fwd::Action::Kind::kShare}, slot, held[i]);
      if (toKernel(action.out_port, held[i], tsc)) continue;
    } else if (action.kind >= fwd::Action::Kind::kRedirect) [[unlikely]] {
      if (from_peer) {
        // A peer sent it here because its SNAT port is ours; ownership does not change,
        // so this cannot ask for another hop. Never bounce frames between workers.
        if (action.kind == fwd::Action::Kind::kRedirect) ctx_.counters.drop(DropReason::kNoFlow);
      } else if (steer(action, slot, held[i])) {
        continue;
      }
    }
    dropped[n_dropped++] = held[i];  // kDrop (reason counted by the pipeline) or kConsumed
  }
  if (n_dropped != 0) rte_pktmbuf_free_bulk(dropped, n_dropped);
  return bytes;
}

bool Worker::wholeBurstTo(const std::array<fwd::Action, kBurstSize>& actions, uint8_t n_slots) const noexcept {
  const uint8_t out = actions[0].out_port;
  if (out >= n_slots || slots_[out].tx_count != 0) return false;
  // Compared as words: an Action has no padding, and a frame sent as it is has every
  // other field zero (fwd::forwardTo). The pipeline stores each Action in pieces; read
  // back a burst later as words, that measured no slower than field by field.
  const auto plain = std::bit_cast<uint64_t>(fwd::Action{.kind = fwd::Action::Kind::kForward, .out_port = out});
  bool same = true;
  for (const fwd::Action& a : actions) same &= std::bit_cast<uint64_t>(a) == plain;
  return same;
}

void Worker::reshape(rte_mbuf* m, const fwd::Action& action) noexcept {
  // Single segment (chains never reach the pipeline), and the pipeline used no more
  // headroom than it was given, so neither call can fail; lengths follow the Action.
  if (action.prepended != 0) (void)rte_pktmbuf_prepend(m, action.prepended);
  if (action.length < m->data_len) (void)rte_pktmbuf_trim(m, static_cast<uint16_t>(m->data_len - action.length));
}

bool Worker::steer(const fwd::Action& action, uint8_t slot, rte_mbuf* m) noexcept {
  if (action.kind == fwd::Action::Kind::kRedirect) {
    if (action.out_port >= handoffs_.size() || action.out_port == ctx_.id) [[unlikely]] {
      ctx_.counters.drop(DropReason::kNoFlow);  // no such peer: nobody has the flow
      return false;
    }
    handOver(action.out_port, slot, m);
    return true;
  }
  // kShare: a copy for every other worker (ARP replies are rare; mbufs are the one
  // allocation the hot path may make). The original is freed by the caller.
  for (uint32_t w = 0; w < handoffs_.size(); ++w) {
    if (w == ctx_.id) continue;
    rte_mbuf* copy = rte_pktmbuf_copy(m, pool_, 0, UINT32_MAX);
    if (copy == nullptr) return false;  // pool exhausted: the peers ask again
    handOver(w, slot, copy);
  }
  return false;
}

void Worker::handOver(uint32_t worker, uint8_t slot, rte_mbuf* m) noexcept {
  // The owner processes it as received on the same port (ring PMDs leave `port` unset).
  m->port = slots_[slot].port_id;
  Handoff& h = handoffs_[worker];
  if (h.count == kBurstSize) sendHandoffs();
  h.pkts[h.count++] = m;
  handoff_pending_ = true;
}

void Worker::sendHandoffs() noexcept {
  for (Handoff& h : handoffs_) {
    if (h.count == 0) continue;
    const unsigned sent = rte_ring_enqueue_burst(h.ring, reinterpret_cast<void* const*>(h.pkts), h.count, nullptr);
    ctx_.counters.redirected.add(sent);
    if (sent < h.count) [[unlikely]] {
      for (unsigned i = sent; i < h.count; ++i) ctx_.counters.drop(DropReason::kRedirectFull);
      rte_pktmbuf_free_bulk(&h.pkts[sent], h.count - sent);
    }
    h.count = 0;
  }
  handoff_pending_ = false;
}

uint8_t Worker::slotOf(uint16_t port_id) const noexcept {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].port_id == port_id) return static_cast<uint8_t>(i);
  }
  return kNoSlot;
}

bool Worker::drainInbox(const fwd::ForwardingSnapshot& snap, uint64_t tsc, uint32_t now_ms) noexcept {
  rte_mbuf* pkts[kBurstSize];
  const unsigned n = rte_ring_sc_dequeue_burst(inbox_, reinterpret_cast<void**>(pkts), kBurstSize, nullptr);
  if (n == 0) return false;
  ctx_.counters.redirect_received.add(n);
  // Runs of frames from the same port go through the pipeline as one burst.
  for (unsigned start = 0; start < n;) {
    unsigned end = start + 1;
    while (end < n && pkts[end]->port == pkts[start]->port) ++end;
    const uint8_t slot = slotOf(pkts[start]->port);
    if (slot == kNoSlot) [[unlikely]] {  // cannot happen: peers serve the same ports
      for (unsigned i = start; i < end; ++i) ctx_.counters.drop(DropReason::kWrongPort);
      rte_pktmbuf_free_bulk(&pkts[start], end - start);
    } else {
      (void)handleBurst(slot, &pkts[start], static_cast<uint16_t>(end - start), snap, tsc, now_ms,
                        /*from_peer=*/true);
    }
    start = end;
  }
  return true;
}

bool Worker::toKernel(uint8_t slot, rte_mbuf* m, uint64_t tsc) noexcept {
  if (slot >= kernel_slots_.size() || kernel_slots_[slot].port_id == kNoPort) [[unlikely]] {
    // The pipeline asks only for ports whose PortInfo says there is an interface.
    ctx_.counters.drop(DropReason::kLocalNoExceptionPath);
    return false;
  }
  enqueueTx(kernel_slots_[slot], m, tsc);
  return true;
}

bool Worker::receiveFromKernel(uint8_t slot, uint64_t tsc) noexcept {
  const Slot& k = kernel_slots_[slot];
  if (k.port_id == kNoPort) return false;
  rte_mbuf* pkts[kBurstSize];
  const uint16_t n = rte_eth_rx_burst(k.port_id, k.queue_id, pkts, kBurstSize);
  if (n == 0) return false;
  // The kernel resolved the next hop and wrote the MACs: out of the data port as it is.
  // At most one burst per poll, so a chatty kernel cannot crowd out forwarding.
  Slot& out = slots_[slot];
  for (uint16_t i = 0; i < n; ++i) {
    if (pkts[i]->nb_segs > 1) [[unlikely]] {
      ctx_.counters.drop(DropReason::kMultiSegment);
      rte_pktmbuf_free(pkts[i]);
      continue;
    }
    ctx_.counters.from_kernel.add();
    enqueueTx(out, pkts[i], tsc);
  }
  return true;
}

void Worker::enqueueTx(Slot& slot, rte_mbuf* m, uint64_t tsc) noexcept {
  if (slot.tx_count == 0) slot.tx_first_tsc = tsc;
  slot.tx[slot.tx_count++] = m;
  if (slot.tx_count == kBurstSize) sendTx(slot);
}

void Worker::sendTx(Slot& slot) noexcept {
  const uint16_t count = slot.tx_count;
  if (count == 0) return;
  slot.tx_count = 0;
  transmit(slot, slot.tx, count);
}

void Worker::transmit(const Slot& slot, rte_mbuf** pkts, uint16_t count) noexcept {
  // Lengths are read before the burst: once sent, an mbuf belongs to the device (or, on
  // a ring, to whoever dequeues it).
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < count; ++i) bytes += pkts[i]->pkt_len;
  const uint16_t sent = rte_eth_tx_burst(slot.port_id, slot.queue_id, pkts, count);
  // A kernel interface's queue full (the kernel is not reading): bounded by its length,
  // counted apart from the data ports' TX.
  const DropReason full = slot.kernel ? DropReason::kExceptionQueueFull : DropReason::kTxFull;
  if (sent < count) [[unlikely]] {
    for (uint16_t i = sent; i < count; ++i) {
      bytes -= pkts[i]->pkt_len;
      ctx_.counters.drop(full);
    }
    rte_pktmbuf_free_bulk(&pkts[sent], count - sent);
  }
  if (slot.kernel) [[unlikely]] {
    ctx_.counters.to_kernel.add(sent);
    return;
  }
  ctx_.counters.tx_packets.add(sent);
  ctx_.counters.tx_bytes.add(bytes);
}

void Worker::drainTx(uint64_t tsc) noexcept {
  for (Slot& slot : slots_) {
    if (slot.tx_count != 0 && tsc - slot.tx_first_tsc >= drain_cycles_) sendTx(slot);
  }
  for (Slot& slot : kernel_slots_) {
    if (slot.tx_count != 0 && tsc - slot.tx_first_tsc >= drain_cycles_) sendTx(slot);
  }
}

void Worker::flushTx() noexcept {
  for (Slot& slot : slots_) sendTx(slot);
  for (Slot& slot : kernel_slots_) sendTx(slot);
}

void Worker::slowTick() noexcept {
  const uint64_t tsc = rte_get_tsc_cycles();
  last_tick_tsc_ = tsc;
  const uint32_t now_ms = nowMs(tsc);
  if (const fwd::ForwardingSnapshot* snap = acquireSnapshot(now_ms); snap != nullptr) {
    std::array<fwd::ArpRequest, kMaxArpPerTick> requests;
    const size_t n = fwd::slowTick(ctx_, *snap, now_ms, options_.expiry_budget, requests);
    sendArpRequests(requests.data(), std::min(n, requests.size()), tsc);
    std::array<fwd::NsRequest, kMaxArpPerTick> ns;
    const size_t n6 = fwd::slowTickNd(ctx_, *snap, now_ms, ns);
    sendNsRequests(ns.data(), std::min(n6, ns.size()), tsc);
    if (ctx_.id == 0) {
      // One worker announces the VIPs (its queue of the external port): every worker
      // doing it would multiply the frames, not the reach.
      std::array<fwd::ArpRequest, fwd::kGarpPerTick> vips;
      const size_t due = fwd::announceVips(ctx_, *snap, now_ms, vips);
      sendGratuitousArps(vips.data(), std::min(due, vips.size()), tsc);
      std::array<fwd::NsRequest, fwd::kGarpPerTick> vips6;
      const size_t due6 = fwd::announceVips6(ctx_, *snap, now_ms, vips6);
      sendGenerated(vips6.data(), std::min(due6, vips6.size()), tsc, ctx_.counters.na_sent, fwd::writeUnsolicitedNa);
    }
  }
  ctx_.counters.active_flows.set(ctx_.flows.size() + ctx_.flows6.size());
  ctx_.counters.half_open_flows.set(ctx_.flows.halfOpen() + ctx_.flows6.halfOpen());
  drainTx(tsc);
  rte_rcu_qsbr_quiescent(qsbr_, rcu_thread_id_);
}

// Frames the worker writes itself (ARP requests, IPv6 Neighbor Solicitations, gratuitous
// ARPs, unsolicited Neighbor Advertisements): one mbuf each, written by `write(port, target, room)`, counted in `sent`. A
// request for a port the worker has no queue on is skipped; an exhausted pool ends the
// batch (the neighbour tables and the announcement rounds retry later).
template <class Request, class Write>
void Worker::sendGenerated(const Request* requests, size_t n, uint64_t tsc, fwd::Counter& sent,
                           Write write) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const Request& req = requests[i];
    if (req.port >= slots_.size() || req.port >= ctx_.ports.size()) continue;
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) return;
    const std::span<std::byte> room(rte_pktmbuf_mtod(m, std::byte*), rte_pktmbuf_tailroom(m));
    const size_t len = write(ctx_.ports[req.port], req.target_ip, room);
    if (len == 0 || rte_pktmbuf_append(m, static_cast<uint16_t>(len)) == nullptr) {
      rte_pktmbuf_free(m);
      continue;
    }
    sent.add();
    enqueueTx(slots_[req.port], m, tsc);
  }
}

void Worker::sendArpRequests(const fwd::ArpRequest* requests, size_t n, uint64_t tsc) noexcept {
  sendGenerated(requests, n, tsc, ctx_.counters.arp_requests, fwd::writeArpRequest);
}

void Worker::sendNsRequests(const fwd::NsRequest* requests, size_t n, uint64_t tsc) noexcept {
  sendGenerated(requests, n, tsc, ctx_.counters.nd_requests, fwd::writeNsRequest);
}

void Worker::sendGratuitousArps(const fwd::ArpRequest* vips, size_t n, uint64_t tsc) noexcept {
  sendGenerated(vips, n, tsc, ctx_.counters.garp_sent, fwd::writeGratuitousArp);
}

}  // namespace ng::dpdk
