// The health engine's schedule: exact slot arithmetic on synthetic time points.
#include "health/timer_wheel.h"

#include <gtest/gtest.h>

#include <vector>

namespace ng::health {
namespace {

using namespace std::chrono_literals;
using Wheel = TimerWheel<int>;
const Wheel::Clock::time_point t0{};  // origin

std::vector<int> take(Wheel& w, Wheel::Clock::duration at) {
  std::vector<int> out;
  w.takeDue(t0 + at, [&](int* i) { out.push_back(*i); });
  return out;
}

TEST(TimerWheel, ItemsComeOutAtTheFirstBoundaryAtOrAfterTheirDueTime) {
  Wheel w(t0, 5ms);
  int a = 1, b = 2, c = 3;
  EXPECT_EQ(w.add(&a, t0 + 5ms), t0 + 5ms);   // on a boundary: that one
  EXPECT_EQ(w.add(&b, t0 + 6ms), t0 + 10ms);  // inside a slot: its end
  EXPECT_EQ(w.add(&c, t0 + 10ms), t0 + 10ms);
  EXPECT_EQ(w.nextWake(), t0 + 5ms);
  EXPECT_TRUE(take(w, 4ms).empty());  // never early
  EXPECT_EQ(take(w, 5ms), std::vector<int>{1});
  EXPECT_EQ(w.nextWake(), t0 + 10ms);
  EXPECT_TRUE(take(w, 9ms).empty());
  EXPECT_EQ(take(w, 12ms), (std::vector<int>{2, 3}));
  EXPECT_EQ(w.size(), 0u);
  EXPECT_FALSE(w.nextWake());
}

TEST(TimerWheel, APastDueTimeGoesToTheNextBoundaryNotTaken) {
  Wheel w(t0, 5ms);
  int a = 1;
  EXPECT_TRUE(take(w, 20ms).empty());           // boundaries up to 20 ms are taken
  EXPECT_EQ(w.add(&a, t0 + 3ms), t0 + 25ms);    // late, but never lost
  EXPECT_EQ(take(w, 25ms), std::vector<int>{1});
}

TEST(TimerWheel, DueTimesMoreThanATurnAheadWaitForTheirTurn) {
  Wheel w(t0, 5ms);
  const auto turn = Wheel::kSlots * 5ms;
  int near = 1, far = 2, farther = 3;
  w.add(&near, t0 + 10ms);
  w.add(&far, t0 + 10ms + turn);            // the same slot, one turn later
  w.add(&farther, t0 + 10ms + 2 * turn);    // and two
  EXPECT_EQ(take(w, 10ms), std::vector<int>{1});
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(take(w, turn).empty());
  EXPECT_EQ(take(w, turn + 10ms), std::vector<int>{2});
  EXPECT_TRUE(take(w, 2 * turn).empty());
  EXPECT_EQ(take(w, 2 * turn + 10ms), std::vector<int>{3});
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, AfterALongPauseEverythingDueComesOutOnce) {
  Wheel w(t0, 5ms);
  const auto turn = Wheel::kSlots * 5ms;
  std::vector<int> items(50);
  for (int i = 0; i < 50; ++i) {
    items[i] = i;
    w.add(&items[i], t0 + i * 100ms);  // spread over 5 s, within one turn
  }
  int later = 99;
  w.add(&later, t0 + 3 * turn);
  const auto out = take(w, 2 * turn);  // stalled for two turns
  EXPECT_EQ(out.size(), 50u);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(take(w, 3 * turn), std::vector<int>{99});
}

TEST(TimerWheel, AnItemAddedWhileItsSlotIsTakenComesOutLater) {
  Wheel w(t0, 5ms);
  const auto turn = Wheel::kSlots * 5ms;
  int a = 1, b = 2;
  w.add(&a, t0 + 5ms);
  std::vector<int> out;
  w.takeDue(t0 + 5ms, [&](int* i) {
    out.push_back(*i);
    w.add(&b, t0 + 5ms + turn);  // lands in the slot being taken, a turn later
  });
  EXPECT_EQ(out, std::vector<int>{1});
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.nextWake(), t0 + 5ms + turn);
  EXPECT_EQ(take(w, 5ms + turn), std::vector<int>{2});
}

}  // namespace
}  // namespace ng::health
