#include "control/status_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ng::control {
namespace {

TEST(StatusApi, StatsSumOverWorkersAndNameEveryDropReason) {
  fwd::WorkerCounters a;
  fwd::WorkerCounters b;
  a.rx_packets.add(10);
  b.rx_packets.add(5);
  a.new_flows.add(2);
  b.drop(fwd::DropReason::kNoService);
  b.drop(fwd::DropReason::kNoService);
  a.active_flows.set(7);
  StatusSources src{.generation = [] { return uint64_t{3}; }, .ready = [] { return true; }, .workers = {&a, &b}};
  const nlohmann::json j = statsJson(src);
  EXPECT_EQ(j["generation"], 3);
  EXPECT_EQ(j["workers"], 2);
  EXPECT_EQ(j["counters"]["rx_packets"], 15);
  EXPECT_EQ(j["counters"]["new_flows"], 2);
  EXPECT_EQ(j["counters"]["active_flows"], 7);
  EXPECT_EQ(j["drops"]["no_service"], 2);
  EXPECT_EQ(j["drops"].size(), fwd::kDropReasonCount);
  for (const auto& [name, value] : j["drops"].items()) EXPECT_NE(name, "unknown");
}

}  // namespace
}  // namespace ng::control
