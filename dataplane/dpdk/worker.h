#pragma once
// A worker lcore: the DPDK side of the run-to-completion loop (DESIGN.md sec. 2, STYLE.md
// examples 2, 3, 12). It maps rte_mbuf to byte spans for fwd::processFrame() and owns the
// per-lcore TX buffers; everything else per lcore lives in the fwd::WorkerContext.
//
// Everything a worker does, in one place (Worker::run):
//   rcu online
//   until stop:
//     pollOnce()      load the snapshot (acquire) once; apply it if its generation is new
//                     (fwd::onSnapshot); for each port slot: rx burst of 32, prefetch one
//                     ahead, drop chained mbufs (kMultiSegment), fwd::processFrame(),
//                     buffer forwarded mbufs per output slot (sent when 32 are buffered),
//                     buffer frames owned by another worker per peer (kRedirect; kShare
//                     copies), free the rest in bulk; hand the peer buffers over; take a
//                     burst from this worker's redirect ring and process it like received
//                     frames (never handed on again); send buffers older than drain_us
//                     (TSC timer); count rx/tx, busy/idle polls; report an RCU quiescent
//                     state. Exception path: frames the pipeline gives to the kernel
//                     (kToKernel, kShareToKernel) are buffered per kernel interface and
//                     sent like TX; a burst from each kernel interface's queue `id`
//                     (what the kernel sent) goes, unchanged, into the TX buffer of its
//                     data port.
//     slowTick()      every slow_tick_us by TSC: fwd::slowTick() (flow expiry with a
//                     budget, due ARP requests) -> ARP requests sent from fresh mbufs;
//                     worker 0 only: fwd::announceVips() -> gratuitous ARPs and
//                     fwd::announceVips6() -> unsolicited NAs (each at most
//                     fwd::kGarpPerTick) on the external port; active_flows gauge;
//                     quiescent state.
//     idleBackoff()   after idle_polls_before_sleep empty polls in a row: send the TX
//                     buffers, sleep 1, 2, 4 ... up to idle_sleep_max_us microseconds
//                     per empty poll (0 = always busy-poll); the first frame resets it.
//   send what is still buffered; rcu offline
//
// Several workers (DESIGN.md sec. 2, "Replies reach the owning worker on any NIC"): each
// worker serves queue `id` of every port and owns a redirect ring (WorkerRings) that any
// worker may enqueue to and only it dequeues from. The SNAT port choice makes a full-NAT
// reply land on its owner's queue where the NIC's RSS is predictable; where it is not,
// or when the NIC disagrees, the worker that receives a reply it has no flow for hands it
// to the owner (fwd::Action::kRedirect, counted `redirected`, `redirect_received`, drop
// reason kRedirectFull when the ring is full). Client -> VIP frames are not redirected:
// the device keeps a flow on one queue (RSS on the 5-tuple; net_af_packet's kernel
// fanout hashes the flow too - except that, with its rollover flag, a frame overflowing
// a full socket ring goes to another queue, where it finds no flow and is dropped like
// any overflowing frame).
//
// Hot path (pollOnce/slowTick): no locks, no allocation except mbufs, no exceptions, no
// logging. Threading: a Worker is driven by exactly one thread at a time - its lcore via
// launchOn()/run(), or a test thread calling online(); pollOnce()...; offline(). A thread
// that is online must not call RcuPublisher::publish() (it would wait for itself).
// Lifetime: constructed and destroyed on the control thread; borrows the WorkerContext,
// the RcuPublisher, the stop flag and the mempool, which must outlive it, and the ports
// (stop workers before closing ports).
//
// Bring-up in main (control/main.cc), roughly:
//
//   namespace dp = ng::dpdk;
//   dp::Eal eal(dp::ealArgs(cfg.eal, cfg.workers, {ext.device, int_.device}));
//   const auto n = static_cast<uint16_t>(cfg.workers.size());
//   dp::Mempool pool("ng_mbufs", dp::Mempool::mbufCount({.ports = 2, .rx_queues_per_port = n,
//                        .tx_queues_per_port = n, .lcores = n + 1u}),
//                    dp::Mempool::dataRoomFor(mtu));
//   std::vector<dp::Port> ports;
//   ports.push_back(dp::Port::open(ext.device, n, n, ext.mtu, pool.get()));   // slot 0
//   ports.push_back(dp::Port::open(int_.device, n, n, int_.mtu, pool.get()));  // slot 1
//   std::vector<ng::fwd::PortInfo> infos = {{.role = ng::fwd::PortRole::kExternal,
//       .mac = ports[0].mac(), ...}, {.role = ng::fwd::PortRole::kInternal, ...}};
//   dp::RcuPublisher publisher(n);
//   std::atomic<bool> stop{false};
//   std::vector<std::unique_ptr<ng::fwd::WorkerContext>> contexts;
//   std::vector<std::unique_ptr<dp::Worker>> workers;
//   for (uint16_t i = 0; i < n; ++i) {
//     contexts.push_back(std::make_unique<ng::fwd::WorkerContext>(i, infos, capacity));
//     workers.push_back(std::make_unique<dp::Worker>(
//         *contexts[i], std::vector<dp::QueueRef>{{ports[0].id(), i}, {ports[1].id(), i}},
//         publisher, /*rcu_thread_id=*/i, stop, pool.get()));
//   }
//   publisher.publish(compiler.compile(model));       // first generation before launch
//   for (uint16_t i = 0; i < n; ++i) workers[i]->launchOn(cfg.workers[i]);
//   ... control loop: publisher.publish(...), sum contexts[i]->counters ...
//   stop.store(true); for (auto& w : workers) w->join();
//   // destruction in reverse order: workers, contexts, publisher, ports, pool, eal

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/rcu_publisher.h"
#include "dataplane/fwd/processor.h"
#include "dataplane/fwd/snapshot.h"

namespace ng::dpdk {

// The redirect rings of a set of workers (each an MbufRing: multi-producer, single
// consumer). `peers[w]` is worker w's ring, the worker's own included; empty = one
// worker, nothing is ever handed over.
struct WorkerRings {
  std::vector<rte_ring*> peers;
};

// The RX/TX queue pair a worker uses on one port slot.
struct QueueRef {
  uint16_t port_id = 0;
  uint16_t queue_id = 0;  // used for both RX and TX
};

// Exception path (dpdk/kernel_iface.h): per port slot, the queue pair this worker uses on
// that port's kernel interface, or nullopt (no kernel interface). Empty = none at all.
// One queue pair per worker on every interface: workers never share a queue, and the
// kernel spreads what it sends over the queues by its own flow hash - whichever worker
// receives a kernel frame sends it on its own TX queue of the data port.
struct KernelQueues {
  std::vector<std::optional<QueueRef>> slots;
};

struct WorkerOptions {
  uint32_t drain_us = 100;        // max time a forwarded frame waits for a full burst
  uint32_t slow_tick_us = 1000;   // slowTick() period in run()
  uint32_t expiry_budget = 1024;  // flow slots examined per slowTick()
  // Idle back-off (shared or virtual machines): the longest sleep between empty polls;
  // 0 = busy-poll always (a dedicated core). The first packet after a quiet spell waits
  // up to this long; under traffic polls are never empty long enough to sleep.
  uint32_t idle_sleep_max_us = 0;
  uint32_t idle_polls_before_sleep = 256;
};

class alignas(64) Worker {
 public:
  using Options = WorkerOptions;
  static constexpr uint32_t kMaxArpPerTick = 32;

  // `queues[i]` serves port slot i of ctx.ports (same order, same size). Registers
  // `rcu_thread_id` with `rcu`. `rings`: one ring per worker of ctx.steering (worker
  // ctx.id dequeues rings.peers[ctx.id]), or none with one worker. Throws
  // std::invalid_argument on mismatched slots, invalid port ids, a bad thread id or
  // rings that do not match ctx.steering (start-up only).
  // `kernel`: the exception path's queues (empty, or one entry per port slot); throws
  // std::invalid_argument on a size mismatch or an invalid port id.
  Worker(fwd::WorkerContext& ctx, std::vector<QueueRef> queues, RcuPublisher& rcu,
         uint32_t rcu_thread_id, std::atomic<bool>& stop, rte_mempool* pool, Options options = {},
         WorkerRings rings = {}, KernelQueues kernel = {});
  // Frees mbufs still buffered, unregisters the RCU thread id. The worker must not run.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // rte_eal_remote_launch entry: `worker` is a Worker*; returns run().
  static int launch(void* worker) noexcept;
  // Launches run() on `lcore_id`; throws std::runtime_error when the lcore is not an
  // idle worker lcore of this EAL.
  void launchOn(unsigned lcore_id);
  // Waits for the lcore started by launchOn() (rte_eal_wait_lcore); returns run()'s result.
  int join() noexcept;

  // The lcore loop (see the header comment). Returns 0 when `stop` becomes true.
  int run() noexcept;

  // The pieces of run(), public so tests can drive a worker deterministically from
  // their own thread. pollOnce()/slowTick() need the calling thread online.
  void online() noexcept;
  void offline() noexcept;
  // Returns true when the poll received at least one frame.
  bool pollOnce() noexcept;
  void slowTick() noexcept;
  // Sleeps when polls have been empty long enough (see the header comment); `busy` is
  // what the last pollOnce() returned.
  void idleBackoff(bool busy) noexcept;
  // Sends every TX buffer now (frames the device refuses are freed, counted kTxFull).
  void flushTx() noexcept;

 private:
  struct alignas(64) Slot {
    uint16_t port_id = 0;
    uint16_t queue_id = 0;
    uint16_t tx_count = 0;
    bool kernel = false;  // a kernel interface (exception path): other counters
    uint64_t tx_first_tsc = 0;  // when the oldest buffered frame was queued
    rte_mbuf* tx[kBurstSize] = {};
  };

  // Frames on their way to one other worker's ring.
  struct Handoff {
    rte_ring* ring = nullptr;
    uint16_t count = 0;
    rte_mbuf* pkts[kBurstSize] = {};
  };
  static constexpr uint8_t kNoSlot = 0xff;

  const fwd::ForwardingSnapshot* acquireSnapshot(uint32_t now_ms) noexcept;
  bool receive(uint8_t slot, const fwd::ForwardingSnapshot& snap, uint64_t tsc,
               uint32_t now_ms) noexcept;
  // Processes `n` frames that arrived on `slot` (from the device, or from a peer through
  // this worker's ring when `from_peer`); returns their bytes.
  uint64_t handleBurst(uint8_t slot, rte_mbuf** pkts, uint16_t n, const fwd::ForwardingSnapshot& snap,
                       uint64_t tsc, uint32_t now_ms, bool from_peer) noexcept;
  // kRedirect / kShare; true when `m` was handed over (no longer ours).
  bool steer(const fwd::Action& action, uint8_t slot, rte_mbuf* m) noexcept;
  // Applies a kForward Action's new start and length (Action::length != 0) to `m`.
  static void reshape(rte_mbuf* m, const fwd::Action& action) noexcept;
  void handOver(uint32_t worker, uint8_t slot, rte_mbuf* m) noexcept;
  void sendHandoffs() noexcept;
  bool drainInbox(const fwd::ForwardingSnapshot& snap, uint64_t tsc, uint32_t now_ms) noexcept;
  [[nodiscard]] uint8_t slotOf(uint16_t port_id) const noexcept;
  void enqueueTx(Slot& slot, rte_mbuf* m, uint64_t tsc) noexcept;
  void sendTx(Slot& slot) noexcept;
  // Hands `count` frames to `slot`'s TX queue now; frees and counts what it refuses.
  void transmit(const Slot& slot, rte_mbuf** pkts, uint16_t count) noexcept;
  // True when every action of a full burst forwards its frame unchanged in length out of
  // port slot actions[0].out_port, and that slot's TX buffer is empty.
  [[nodiscard]] bool wholeBurstTo(const std::array<fwd::Action, kBurstSize>& actions, uint8_t n_slots) const noexcept;
  void drainTx(uint64_t tsc) noexcept;
  void sendArpRequests(const fwd::ArpRequest* requests, size_t n, uint64_t tsc) noexcept;
  void sendNsRequests(const fwd::NsRequest* requests, size_t n, uint64_t tsc) noexcept;
  void sendGratuitousArps(const fwd::ArpRequest* vips, size_t n, uint64_t tsc) noexcept;
  // Exception path: `m` to the kernel interface of `slot`; false (counted) when there is none.
  bool toKernel(uint8_t slot, rte_mbuf* m, uint64_t tsc) noexcept;
  // A burst from the kernel interface of `slot`, out of the data port of `slot`.
  bool receiveFromKernel(uint8_t slot, uint64_t tsc) noexcept;
  template <class Request, class Write>
  void sendGenerated(const Request* requests, size_t n, uint64_t tsc, fwd::Counter& sent, Write write) noexcept;
  [[nodiscard]] uint32_t nowMs(uint64_t tsc) const noexcept {
    return static_cast<uint32_t>(tsc / cycles_per_ms_);
  }

  // Hot, read-mostly.
  fwd::WorkerContext& ctx_;
  const std::atomic<const fwd::ForwardingSnapshot*>* snapshot_;
  rte_rcu_qsbr* qsbr_;
  uint32_t rcu_thread_id_;
  std::atomic<bool>& stop_;
  rte_mempool* pool_;
  uint64_t cycles_per_ms_;
  uint64_t drain_cycles_;
  uint64_t tick_cycles_;
  uint64_t last_poll_tsc_ = 0;
  uint64_t last_tick_tsc_ = 0;
  uint32_t idle_streak_ = 0;  // empty polls in a row
  uint32_t sleep_us_ = 0;     // the next back-off sleep
  Options options_;
  std::vector<Slot> slots_;  // one per port slot, fixed at construction
  rte_ring* inbox_ = nullptr;       // this worker's redirect ring (several workers only)
  std::vector<Handoff> handoffs_;   // per worker id; empty with one worker
  bool handoff_pending_ = false;
  // Exception path: per port slot, the kernel interface's queue (kernel == true) or an
  // unused entry (port_id kNoPort); empty without an exception path.
  std::vector<Slot> kernel_slots_;
  static constexpr uint16_t kNoPort = 0xffff;
  // handleBurst's working arrays. Members, not locals: as locals every burst paid for
  // value-initialising them (std::span and fwd::Action zero themselves; two `rep stos`
  // per burst in the profile). handleBurst never runs nested.
  struct BurstScratch {
    std::array<std::span<std::byte>, kBurstSize> frames;
    std::array<rte_mbuf*, kBurstSize> held;
    std::array<fwd::Action, kBurstSize> actions;
  };
  BurstScratch scratch_;

  // Cold.
  RcuPublisher& rcu_;
  unsigned lcore_id_ = ~0u;
};

}  // namespace ng::dpdk
