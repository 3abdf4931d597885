#pragma once
// When each of many items is next due: a hashed timer wheel (Varghese & Lauck, "Hashed
// and Hierarchical Timing Wheels", SOSP 1987, scheme 6) with one slot per `tick`. Adding
// an item and taking a due batch out cost O(1) per item, where a heap costs O(log n)
// over every item scheduled (10,000 targets in the health engine). Items are due at slot
// boundaries: one taken out at boundary k was due within the tick before it, so a caller
// that wakes up at boundaries starts everything at most one tick late and never early.
// Due times more than one turn (kSlots ticks) ahead stay in their slot until their turn.
//
// Not thread-safe: one owner thread (the health engine's). Holds raw pointers and owns
// nothing: an item must stay alive while it is in the wheel.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ng::health {

template <class T>
class TimerWheel {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kSlots = 1024;

  // Boundaries are at origin + k * tick, k >= 0; due times before origin count as origin.
  TimerWheel(Clock::time_point origin, Clock::duration tick)
      : origin_(origin), tick_(tick), slots_(kSlots) {}

  // `item` is due at `when`: takeDue() hands it out at the first boundary at or after
  // `when`, and never at a boundary already taken. Returns that boundary.
  Clock::time_point add(T* item, Clock::time_point when) {
    const int64_t tick = std::max(tickAtOrAfter(when), next_tick_);
    slots_[static_cast<size_t>(tick) % kSlots].push_back({tick, item});
    ++size_;
    return origin_ + tick * tick_;
  }

  // Calls fn(T*) for every item due at a boundary at or before `now`, slot by slot, and
  // marks those boundaries taken. `fn` may add() (it then lands at a later boundary).
  template <class Fn>
  void takeDue(Clock::time_point now, Fn&& fn) {
    if (now < origin_) return;
    const int64_t last = (now - origin_) / tick_;  // the last boundary passed
    if (last < next_tick_) return;
    // After a long pause (the loop stopped or stalled) every slot is visited once.
    const int64_t first = std::max(next_tick_, last - static_cast<int64_t>(kSlots) + 1);
    next_tick_ = last + 1;
    for (int64_t tick = first; tick <= last; ++tick) {
      auto& slot = slots_[static_cast<size_t>(tick) % kSlots];
      if (slot.empty()) continue;
      scratch_.swap(slot);  // `fn` may add to this very slot (a due time whole turns away)
      for (const Entry& e : scratch_) {
        if (e.tick > last) {
          slot.push_back(e);  // a later turn
          continue;
        }
        --size_;
        fn(e.item);
      }
      scratch_.clear();
    }
  }

  // The first boundary not yet taken whose slot holds something (possibly only items of
  // a later turn: waking up then is harmless); nullopt when the wheel is empty.
  [[nodiscard]] std::optional<Clock::time_point> nextWake() const {
    if (size_ == 0) return std::nullopt;
    for (int64_t tick = next_tick_; tick < next_tick_ + static_cast<int64_t>(kSlots); ++tick) {
      if (!slots_[static_cast<size_t>(tick) % kSlots].empty()) return origin_ + tick * tick_;
    }
    return std::nullopt;  // not reached: size_ > 0 means some slot holds something
  }

  [[nodiscard]] size_t size() const noexcept { return size_; }

  void clear() {
    for (auto& slot : slots_) slot.clear();
    size_ = 0;
  }

 private:
  struct Entry {
    int64_t tick;
    T* item;
  };

  int64_t tickAtOrAfter(Clock::time_point when) const {
    if (when <= origin_) return 0;
    const auto since = when - origin_;
    const int64_t tick = since / tick_;
    return since > tick * tick_ ? tick + 1 : tick;
  }

  Clock::time_point origin_;
  Clock::duration tick_;
  std::vector<std::vector<Entry>> slots_;
  std::vector<Entry> scratch_;
  int64_t next_tick_ = 0;  // every boundary before it has been taken
  size_t size_ = 0;
};

}  // namespace ng::health
