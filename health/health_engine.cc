#include "health/health_engine.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include <asio.hpp>
#include <spdlog/spdlog.h>

#include "health/asio_prober.h"
#include "health/timer_wheel.h"

namespace ng::health {
namespace {

using Clock = std::chrono::steady_clock;

int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Probe starts due within this much of each other share one wake-up of the loop: at 10k
// probes a second a wake-up per probe costs more than the probes' own syscalls. A probe
// starts at most this late, against +-10% jitter. (10 ms halves the wake-ups again but
// showed no difference within the noise of the benchmark, and starts probes later.)
constexpr auto kBatch = std::chrono::milliseconds(5);

// One distinct target. `probe` is its identity and never changes; `timing` and `state`
// are shared with readers on other threads under Impl::mu; next_due and owned_at belong
// to the engine thread.
struct Target {
  Target(ProbeSpec p, const ProbeTiming& t, int64_t now_unix_ms)
      : probe(std::move(p)), timing(t), state(t.rise, t.fall, HealthState::kUp, now_unix_ms) {}

  const ProbeSpec probe;
  ProbeTiming timing;
  TargetState state;
  std::atomic<bool> removed{false};
  Clock::time_point next_due{};
  size_t owned_at = 0;         // index in Impl::owned
  std::shared_ptr<void> kept;  // Prober::keep(probe), asked for when first scheduled
};

}  // namespace

struct HealthEngine::Impl {
  Impl(ProberFactory make_prober, std::function<void()> changed)
      : on_change(std::move(changed)), rng(std::random_device{}()) {
    prober = make_prober(*io);  // after io exists; destroyed before it (see ~Impl)
  }

  ~Impl() {
    stop();
    {
      std::lock_guard lock(mu);
      targets.clear();
    }
    due.clear();
    for (auto& t : owned) t->kept.reset();  // handles into the prober go before it does
    // The prober first, while the io_context exists: it closes the connections it keeps
    // between probes (Prober contract). Handlers still queued hold the probes in flight
    // and go with the io_context (the wake timer before it, it refers to it); their
    // completion callbacks point at targets in `owned`, are never run, and so go last.
    prober.reset();
    wake.reset();
    io.reset();
    owned.clear();
  }

  void start() {
    if (thread.joinable()) return;
    io->restart();
    work.emplace(asio::make_work_guard(*io));
    thread = std::thread([this] {
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          // A handler threw (allocation failure, a prober's bug): keep probing rather
          // than taking the process down; the target whose result was lost stops.
          spdlog::error("health: engine handler failed: {}", e.what());
        }
      }
    });
  }

  void stop() {
    if (!thread.joinable()) return;
    work.reset();
    io->stop();
    thread.join();
  }

  void setTargets(std::vector<TargetSpec> specs) {
    const int64_t now = nowUnixMs();
    std::vector<std::shared_ptr<Target>> added;
    {
      std::lock_guard lock(mu);
      std::map<ProbeSpec, std::shared_ptr<Target>> next;
      for (auto& spec : specs) {
        if (next.contains(spec.probe)) continue;  // duplicate: the first one listed wins
        if (auto it = targets.find(spec.probe); it != targets.end()) {
          it->second->timing = spec.timing;
          it->second->state.setHysteresis(spec.timing.rise, spec.timing.fall);
          next.emplace(spec.probe, it->second);
        } else {
          auto t = std::make_shared<Target>(spec.probe, spec.timing, now);
          added.push_back(t);
          next.emplace(std::move(spec.probe), std::move(t));
        }
      }
      for (auto& [probe, t] : targets) {
        if (!next.contains(probe)) t->removed.store(true, std::memory_order_relaxed);
      }
      targets.swap(next);
    }
    if (added.empty()) return;  // removed targets fall out of the schedule when due
    // The schedule belongs to the engine thread.
    asio::post(*io, [this, added = std::move(added)]() mutable {
      const auto now = Clock::now();
      for (auto& t : added) {
        const uint32_t interval = intervalMs(*t);
        // Spread a fresh batch over the interval instead of a burst of N probes at once.
        const auto offset = std::uniform_int_distribution<uint32_t>(0, interval - 1)(rng);
        Target* target = t.get();
        target->kept = prober->keep(target->probe);
        target->owned_at = owned.size();
        owned.push_back(std::move(t));
        schedule(target, now + std::chrono::milliseconds(offset));
      }
    });
  }

  uint32_t intervalMs(const Target& t) const {
    std::lock_guard lock(mu);  // setTargets() may be changing it
    return std::max(t.timing.interval_ms, 1u);
  }

  // One timer for the whole schedule, set to the next slot boundary with something due,
  // so the probes due in one kBatch slice start together.
  void schedule(Target* t, Clock::time_point when) {
    if (const auto at = due.add(t, when); at < wake_at) wakeAt(at);
  }

  void wakeAt(Clock::time_point when) {
    wake_at = when;
    wake->expires_at(when);  // cancels the previous wait, whose handler then sees aborted
    wake->async_wait([this](const std::error_code& ec) {
      if (ec) return;
      wake_at = Clock::time_point::max();
      const auto now = Clock::now();
      batch.clear();
      due.takeDue(now, [&](Target* t) { batch.push_back(t); });
      for (size_t i = 0; i < batch.size(); ++i) {
        // Each target was last touched an interval ago: its memory is cold. Fetch the
        // next ones' while this one starts (two ahead: the target; one ahead: what the
        // prober keeps for it, whose address is in the target).
        if (i + 2 < batch.size()) __builtin_prefetch(batch[i + 2]);
        if (i + 1 < batch.size()) __builtin_prefetch(batch[i + 1]->kept.get());
        Target* t = batch[i];
        if (t->removed.load(std::memory_order_relaxed)) {
          forget(*t);
          continue;
        }
        try {
          launch(*t);
        } catch (const std::exception& e) {
          // Nothing is in flight for it (socket exhaustion, allocation): try again a
          // full interval later instead of dropping the target from the schedule.
          spdlog::error("health: {}: probe not started: {}", t->probe.url(), e.what());
          due.add(t, now + std::chrono::milliseconds(intervalMs(*t)));
        }
      }
      if (const auto next = due.nextWake()) wakeAt(std::max(*next, now));
    });
  }

  void launch(Target& t) {
    ProbeTiming timing;
    {
      std::lock_guard lock(mu);
      timing = t.timing;
    }
    const auto interval = std::chrono::duration<double, std::milli>(std::max(timing.interval_ms, 1u));
    const double jitter = std::uniform_real_distribution<double>(0.9, 1.1)(rng);
    t.next_due = Clock::now() + std::chrono::duration_cast<Clock::duration>(interval * jitter);
    // Two pointers: std::function keeps them inline, no allocation per probe. `t` stays
    // alive while its probe is in flight: `owned` lets go of it only in forget(), which
    // for a target in flight runs from complete().
    prober->probeWith(t.probe, t.kept, std::chrono::milliseconds(std::max(timing.timeout_ms, 1u)),
                      [this, target = &t](ProbeOutcome outcome) { complete(*target, std::move(outcome)); });
    probes_started.fetch_add(1, std::memory_order_relaxed);  // probe() did not throw
  }

  // A removed target leaves the engine thread's hands here (exactly once: it is either
  // scheduled or in flight): the prober lets go of what it keeps for it (a kept-alive
  // connection), unless the same spec was added back meanwhile as a new target, and the
  // engine thread lets go of the target (it may be destroyed here).
  void forget(Target& t) {
    bool added_back;
    {
      std::lock_guard lock(mu);
      added_back = targets.contains(t.probe);
    }
    if (!added_back) prober->forget(t.probe);
    const size_t at = t.owned_at;
    std::swap(owned[at], owned.back());
    owned[at]->owned_at = at;
    owned.pop_back();  // `t` may be gone from here on
  }

  void complete(Target& t, ProbeOutcome outcome) {
    probes_completed.fetch_add(1, std::memory_order_relaxed);
    if (outcome.result != ProbeOutcome::kOk) probe_failures.fetch_add(1, std::memory_order_relaxed);
    if (t.removed.load(std::memory_order_relaxed)) return forget(t);
    TargetState::Change change;
    HealthState from;
    HealthState to;
    uint32_t weight;
    {
      std::lock_guard lock(mu);
      from = t.state.state();
      change = t.state.record(outcome, nowUnixMs());
      to = t.state.state();
      weight = t.state.weight();
    }
    if (change.state) {
      spdlog::info("health: {} {} -> {}: {}", t.probe.url(), healthStateName(from),
                   healthStateName(to), outcome.detail);
    }
    if (change.weight) spdlog::debug("health: {} weight {}", t.probe.url(), weight);
    if ((change.serving || change.weight) && on_change && !change_posted) {
      // Coalesce: many targets flipping in one loop turn give the control plane one call.
      change_posted = true;
      asio::post(*io, [this] {
        change_posted = false;
        on_change();
      });
    }
    schedule(&t, std::max(t.next_due, Clock::now()));
  }

  static TargetStatus statusOf(const Target& t) {
    const TargetState& s = t.state;
    return {.probe = t.probe,
            .timing = t.timing,
            .state = s.state(),
            .serving = s.serving(),
            .weight = s.weight(),
            .last_reason = s.lastReason(),
            .last_detail = s.lastDetail(),
            .last_change_unix_ms = s.lastChangeUnixMs(),
            .last_probe_unix_ms = s.lastProbeUnixMs(),
            .probes = s.probes(),
            .failures = s.failures(),
            .transitions = s.transitions(),
            .history = s.history()};
  }

  std::function<void()> on_change;
  std::unique_ptr<Prober> prober;
  // One thread runs the loop: the concurrency hint lets asio skip its multi-thread
  // wake-ups; posts from other threads (setTargets) stay safe.
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  mutable std::mutex mu;
  std::map<ProbeSpec, std::shared_ptr<Target>> targets;  // guarded by mu
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  // Engine thread only: the targets it probes (until forget()), the schedule, its timer,
  // the RNG for jitter and first offsets.
  std::vector<std::shared_ptr<Target>> owned;
  // When each target is next probed, one slot per kBatch.
  TimerWheel<Target> due{Clock::now(), kBatch};
  std::vector<Target*> batch;  // the targets one wake-up starts
  std::optional<asio::steady_timer> wake{std::in_place, *io};
  Clock::time_point wake_at = Clock::time_point::max();
  std::minstd_rand rng;
  bool change_posted = false;  // engine thread
  std::atomic<uint64_t> probes_started{0};
  std::atomic<uint64_t> probes_completed{0};
  std::atomic<uint64_t> probe_failures{0};
};

HealthEngine::HealthEngine(Options options, std::function<void()> on_change)
    : HealthEngine(
          [options = std::move(options)](asio::io_context& io) -> std::unique_ptr<Prober> {
            return std::make_unique<AsioProber>(
                io, AsioProber::Options{.source_address = options.source_address,
                                        .reuse_connections = options.reuse_connections});
          },
          std::move(on_change)) {}

HealthEngine::HealthEngine(ProberFactory make_prober, std::function<void()> on_change)
    : impl_(std::make_unique<Impl>(std::move(make_prober), std::move(on_change))) {}

HealthEngine::~HealthEngine() = default;

void HealthEngine::start() { impl_->start(); }
void HealthEngine::stop() { impl_->stop(); }
void HealthEngine::setTargets(std::vector<TargetSpec> targets) {
  impl_->setTargets(std::move(targets));
}

std::vector<TargetStatus> HealthEngine::statuses() const {
  std::lock_guard lock(impl_->mu);
  std::vector<TargetStatus> out;
  out.reserve(impl_->targets.size());
  for (const auto& [probe, t] : impl_->targets) out.push_back(Impl::statusOf(*t));
  return out;
}

std::optional<TargetStatus> HealthEngine::status(const ProbeSpec& probe) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->targets.find(probe);
  if (it == impl_->targets.end()) return std::nullopt;
  return Impl::statusOf(*it->second);
}

uint64_t HealthEngine::probesStarted() const noexcept {
  return impl_->probes_started.load(std::memory_order_relaxed);
}
uint64_t HealthEngine::probesCompleted() const noexcept {
  return impl_->probes_completed.load(std::memory_order_relaxed);
}
uint64_t HealthEngine::probeFailures() const noexcept {
  return impl_->probe_failures.load(std::memory_order_relaxed);
}
size_t HealthEngine::targetCount() const {
  std::lock_guard lock(impl_->mu);
  return impl_->targets.size();
}

}  // namespace ng::health
