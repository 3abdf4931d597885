#include "control/kube/reflector.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stop_token>
#include <thread>

#include "control/kube/api_client.h"
#include "test/control/kube/kube_test_support.h"

namespace ng::kube {
namespace {

using namespace std::chrono_literals;
using testing::event;
using testing::expiredEvent;
using testing::listBody;
using testing::obj;
using testing::RecordingSink;
using testing::ScriptedClient;
using Strings = std::vector<std::string>;

Reflector::Options fastOptions() {
  return Reflector::Options{.path = "/api/v1/services",
                            .page_size = 500,
                            .min_watch_timeout = 300s,
                            .max_watch_timeout = 600s,
                            .backoff_initial = 2ms,
                            .backoff_max = 8ms};
}

// Runs a reflector over `client` until the script is used up, then stops it.
struct Harness {
  ScriptedClient client;
  RecordingSink sink;
  Reflector::Options options = fastOptions();
  std::unique_ptr<Reflector> reflector;

  Strings play() {
    reflector = std::make_unique<Reflector>(client, options, sink);
    std::jthread thread([&](std::stop_token stop) { reflector->run(stop); });
    EXPECT_TRUE(client.waitExhausted()) << "the reflector did not reach the end of the script";
    thread.request_stop();
    thread.join();
    return sink.take();
  }
};

TEST(Reflector, ListFollowsContinueThenWatchesFromTheSnapshot) {
  Harness h;
  h.client.list(listBody({obj("a", "s1", "11"), obj("a", "s2", "12")}, "90", "tok/1+="))
      .list(listBody({obj("b", "s3", "13")}, "100"));
  EXPECT_EQ(h.play(), (Strings{"upsert a/s1@11#uid-s1", "upsert a/s2@12#uid-s2", "upsert b/s3@13#uid-s3", "synced"}));
  EXPECT_EQ(h.client.targets(false),
            (Strings{"/api/v1/services?limit=500", "/api/v1/services?limit=500&continue=tok%2F1%2B%3D"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 1u);
  const std::string prefix = "/api/v1/services?watch=1&resourceVersion=100&allowWatchBookmarks=true&timeoutSeconds=";
  ASSERT_TRUE(watches[0].starts_with(prefix)) << watches[0];
  const int timeout = std::stoi(watches[0].substr(prefix.size()));
  EXPECT_GE(timeout, 300);
  EXPECT_LE(timeout, 600);
  const ReflectorStatus st = h.reflector->status();
  EXPECT_TRUE(st.synced);
  EXPECT_EQ(st.resource_version, "100");
  EXPECT_EQ(st.lists, 1u);
  EXPECT_EQ(st.objects, 3u);
  EXPECT_FALSE(st.failing_since.has_value());
}

TEST(Reflector, PageSizeAndPathQueryAreHonoured) {
  Harness h;
  h.options.path = "/api/v1/nodes?labelSelector=role%3Dworker";
  h.options.page_size = 2;
  h.client.list(listBody({}, "5"));
  EXPECT_EQ(h.play(), Strings{"synced"});
  EXPECT_EQ(h.client.targets(false), Strings{"/api/v1/nodes?labelSelector=role%3Dworker&limit=2"});
  EXPECT_TRUE(h.client.targets(true).at(0).starts_with("/api/v1/nodes?labelSelector=role%3Dworker&watch=1&"));
}

TEST(Reflector, ExpiredContinueTokenRestartsTheList) {
  Harness h;
  h.client.list(listBody({obj("a", "old", "1")}, "50", "c1"))
      .getStatus(410)
      .list(listBody({obj("a", "s1", "61")}, "60", "c2"))
      .list(listBody({obj("a", "s2", "62")}, "60"));
  // Only the complete second list is delivered: nothing of the abandoned first page.
  EXPECT_EQ(h.play(), (Strings{"upsert a/s1@61#uid-s1", "upsert a/s2@62#uid-s2", "synced"}));
  EXPECT_EQ(h.client.targets(false),
            (Strings{"/api/v1/services?limit=500", "/api/v1/services?limit=500&continue=c1",
                     "/api/v1/services?limit=500", "/api/v1/services?limit=500&continue=c2"}));
  EXPECT_TRUE(h.client.targets(true).at(0).find("resourceVersion=60&") != std::string::npos);
  EXPECT_FALSE(h.reflector->status().failing_since.has_value());
}

TEST(Reflector, InStreamExpiryRelistsAndDeliversOnlyTheDifference) {
  Harness h;
  h.client.list(listBody({obj("a", "keep", "1"), obj("a", "change", "1"), obj("a", "gone", "1"),
                          obj("a", "seen", "1")},
                         "10"))
      .watch({event("MODIFIED", obj("a", "seen", "11")), expiredEvent()})
      .list(listBody({obj("a", "keep", "1"), obj("a", "change", "20"), obj("a", "seen", "11"),
                      obj("a", "new", "21")},
                     "30"));
  const Strings log = h.play();
  EXPECT_EQ(log, (Strings{"upsert a/keep@1#uid-keep", "upsert a/change@1#uid-change", "upsert a/gone@1#uid-gone",
                          "upsert a/seen@1#uid-seen", "synced",
                          "upsert a/seen@11#uid-seen",
                          // the relist: the vanished one removed with its last state, only the
                          // changed and new ones upserted, "keep" and "seen" untouched
                          "remove a/gone@1#uid-gone", "upsert a/change@20#uid-change", "upsert a/new@21#uid-new",
                          "synced"}));
  // The relist is a consistent LIST (no resourceVersion), the next watch starts at its RV.
  EXPECT_EQ(h.client.targets(false), (Strings{"/api/v1/services?limit=500", "/api/v1/services?limit=500"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_NE(watches[1].find("resourceVersion=30&"), std::string::npos) << watches[1];
  const ReflectorStatus st = h.reflector->status();
  EXPECT_EQ(st.relists_after_expiry, 1u);
  EXPECT_EQ(st.lists, 2u);
  EXPECT_EQ(st.objects, 4u);
  EXPECT_EQ(st.failures, 0u);
}

TEST(Reflector, HttpGoneOnTheWatchRelists) {
  Harness h;
  h.client.list(listBody({obj("a", "x", "1"), obj("a", "y", "1")}, "10"))
      .watchStatus(410)
      .list(listBody({obj("a", "x", "1")}, "40"));
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@1#uid-x", "upsert a/y@1#uid-y", "synced", "remove a/y@1#uid-y", "synced"}));
  EXPECT_EQ(h.reflector->status().relists_after_expiry, 1u);
  EXPECT_NE(h.client.targets(true).at(1).find("resourceVersion=40&"), std::string::npos);
}

TEST(Reflector, BookmarkStoresTheResourceVersionOnly) {
  Harness h;
  nlohmann::json bookmark{{"kind", "Service"}, {"metadata", {{"resourceVersion", "777"}}}};
  h.client.list(listBody({obj("a", "x", "1")}, "10")).watch({event("BOOKMARK", bookmark)});
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@1#uid-x", "synced"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_NE(watches[1].find("resourceVersion=777&"), std::string::npos) << watches[1];
  EXPECT_EQ(h.reflector->status().resource_version, "777");
  EXPECT_EQ(h.reflector->status().lists, 1u);
}

TEST(Reflector, EndOfStreamAndCutWatchAgainFromTheLastResourceVersionWithoutRelisting) {
  Harness h;
  h.client.list(listBody({}, "10"))
      .watch({event("ADDED", obj("a", "x", "11"))})  // clean end (timeoutSeconds)
      .watch({event("MODIFIED", obj("a", "x", "12"))},
             {.status = 200, .error = "stream cut: read failed (5 bytes of a partial line dropped)"});
  EXPECT_EQ(h.play(), (Strings{"synced", "upsert a/x@11#uid-x", "upsert a/x@12#uid-x"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 3u);
  EXPECT_NE(watches[1].find("resourceVersion=11&"), std::string::npos);
  EXPECT_NE(watches[2].find("resourceVersion=12&"), std::string::npos);
  EXPECT_EQ(h.client.targets(false).size(), 1u);
  EXPECT_FALSE(h.reflector->status().failing_since.has_value());
}

TEST(Reflector, DuplicateEventsAreNotDelivered) {
  Harness h;
  h.client.list(listBody({obj("a", "x", "5")}, "10"))
      .watch({event("ADDED", obj("a", "x", "5")),        // already delivered by the list
              event("MODIFIED", obj("a", "x", "6")), event("MODIFIED", obj("a", "x", "6")),
              event("DELETED", obj("a", "x", "7")), event("DELETED", obj("a", "x", "7")),
              event("DELETED", obj("a", "never", "8"))});
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@5#uid-x", "synced", "upsert a/x@6#uid-x", "remove a/x@7#uid-x"}));
  EXPECT_EQ(h.reflector->status().events, 6u);
  EXPECT_EQ(h.reflector->status().objects, 0u);
}

TEST(Reflector, NewUidUnderTheSameNameIsDeleteThenCreate) {
  Harness h;
  h.client.list(listBody({obj("a", "x", "5", "u1"), obj("a", "y", "5", "u1")}, "10"))
      .watch({event("MODIFIED", obj("a", "x", "6", "u2")), expiredEvent()})
      .list(listBody({obj("a", "x", "6", "u2"), obj("a", "y", "9", "u3")}, "20"));
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@5#u1", "upsert a/y@5#u1", "synced",
                               "remove a/x@5#u1", "upsert a/x@6#u2",
                               // the same found by a relist
                               "remove a/y@5#u1", "upsert a/y@9#u3", "synced"}));
}

TEST(Reflector, ClusterScopedObjectsAreKeyedByName) {
  Harness h;
  h.options.path = "/api/v1/nodes";
  h.client.list(listBody({obj("", "n1", "1")}, "10")).watch({event("DELETED", obj("", "n1", "2"))});
  EXPECT_EQ(h.play(), (Strings{"upsert n1@1#uid-n1", "synced", "remove n1@2#uid-n1"}));
}

TEST(Reflector, MalformedLinesAreCountedAndTheWatchRestartsFromTheLastGoodVersion) {
  Harness h;
  h.client.list(listBody({}, "10"))
      .watch({event("ADDED", obj("a", "x", "11")), "{not json", event("ADDED", obj("a", "lost", "12"))})
      .watch({R"({"type":"ADDED"})"})
      .watch({event("ADDED", nlohmann::json{{"metadata", {{"resourceVersion", "13"}}}})})
      .watch({event("SOMETHING", obj("a", "x", "14"))})
      .watch({event("MODIFIED", obj("a", "x", "15"))});
  EXPECT_EQ(h.play(), (Strings{"synced", "upsert a/x@11#uid-x", "upsert a/x@15#uid-x"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 6u);
  for (size_t i = 1; i < 5; ++i) EXPECT_NE(watches[i].find("resourceVersion=11&"), std::string::npos) << i;
  const ReflectorStatus st = h.reflector->status();
  EXPECT_EQ(st.malformed, 4u);
  EXPECT_EQ(st.lists, 1u);
  EXPECT_FALSE(st.failing_since.has_value());  // the last watch worked
}

TEST(Reflector, OtherErrorEventsBackOffAndWatchAgain) {
  Harness h;
  h.client.list(listBody({}, "10"))
      .watch({event("ERROR", {{"kind", "Status"}, {"code", 500}, {"message", "internal error"}})})
      .watch({event("ADDED", obj("a", "x", "11"))});
  EXPECT_EQ(h.play(), (Strings{"synced", "upsert a/x@11#uid-x"}));
  const ReflectorStatus st = h.reflector->status();
  EXPECT_EQ(st.failures, 1u);
  EXPECT_EQ(st.lists, 1u);
  EXPECT_NE(st.last_error.find("internal error"), std::string::npos) << st.last_error;
}

TEST(Reflector, FailuresBackOffExponentiallyUpToTheCapAndRecover) {
  Harness h;
  h.options.backoff_initial = 20ms;
  h.options.backoff_max = 80ms;
  std::vector<ReflectorStatus> seen;  // the status at each retry, read on the reflector's thread
  auto record = [&] { seen.push_back(h.reflector->status()); };
  h.client.getStatus(503, 0s, record)
      .getStatus(0, 0s, record)
      .getStatus(500, 0s, record)
      .getStatus(429, 0s, record)
      .getStatus(503, 0s, record)
      .list(listBody({}, "10"), record);
  EXPECT_EQ(h.play(), Strings{"synced"});
  const auto calls = h.client.calls();
  ASSERT_GE(calls.size(), 6u);
  // Nominal steps 20, 40, 80, 80, 80 ms; each wait is at least 3/4 of its step.
  const int steps[] = {20, 40, 80, 80, 80};
  for (size_t i = 0; i < 5; ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(calls[i + 1].at - calls[i].at);
    EXPECT_GE(gap.count(), steps[i] * 3 / 4) << "retry " << i;
    EXPECT_LE(seen[i + 1].last_backoff.count(), steps[i]) << "retry " << i;
    EXPECT_GE(seen[i + 1].last_backoff.count(), steps[i] * 3 / 4) << "retry " << i;
  }
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_FALSE(seen[0].failing_since.has_value());
  for (size_t i = 1; i < 6; ++i) {
    ASSERT_TRUE(seen[i].failing_since.has_value()) << i;
    EXPECT_EQ(*seen[i].failing_since, *seen[1].failing_since) << "failing since the first failure";
    EXPECT_EQ(seen[i].consecutive_failures, i);
  }
  EXPECT_NE(seen[2].last_error.find("connection refused"), std::string::npos) << seen[2].last_error;
  EXPECT_NE(seen[5].last_error.find("HTTP 503"), std::string::npos) << seen[5].last_error;
  const ReflectorStatus st = h.reflector->status();
  EXPECT_FALSE(st.failing_since.has_value());
  EXPECT_EQ(st.consecutive_failures, 0u);
  EXPECT_EQ(st.failures, 5u);
  EXPECT_NE(st.last_contact, std::chrono::system_clock::time_point{});
}

TEST(Reflector, RetryAfterIsAFloorForTheBackoff) {
  Harness h;
  h.client.getStatus(429, 1s).list(listBody({}, "10"));
  EXPECT_EQ(h.play(), Strings{"synced"});
  const auto calls = h.client.calls();
  ASSERT_GE(calls.size(), 2u);
  EXPECT_GE(calls[1].at - calls[0].at, 1s);
  EXPECT_EQ(h.reflector->status().last_backoff, 1000ms);
}

TEST(Reflector, WatchFailuresBackOffAndKeepTheCache) {
  Harness h;
  h.client.list(listBody({obj("a", "x", "1")}, "10"))
      .watchStatus(503)
      .watchStatus(0)
      .watch({event("MODIFIED", obj("a", "x", "2"))});
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@1#uid-x", "synced", "upsert a/x@2#uid-x"}));
  const Strings watches = h.client.targets(true);
  ASSERT_EQ(watches.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NE(watches[i].find("resourceVersion=10&"), std::string::npos);
  EXPECT_EQ(h.reflector->status().failures, 2u);
  EXPECT_EQ(h.reflector->status().lists, 1u);
}

TEST(Reflector, StopDuringALongBackoffReturnsPromptly) {
  ScriptedClient client;
  RecordingSink sink;
  Reflector::Options options = fastOptions();
  options.backoff_initial = 30s;
  options.backoff_max = 30s;
  client.getStatus(503);
  Reflector reflector(client, options, sink);
  std::jthread thread([&](std::stop_token stop) { reflector.run(stop); });
  while (reflector.status().failures == 0) std::this_thread::sleep_for(1ms);
  const auto asked = std::chrono::steady_clock::now();
  thread.request_stop();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  EXPECT_TRUE(reflector.status().failing_since.has_value());
}

TEST(Reflector, RunAgainAfterStopRelistsAndDiffsAgainstTheKeptCache) {
  Harness h;
  h.client.list(listBody({obj("a", "x", "1"), obj("a", "y", "1")}, "10"));
  EXPECT_EQ(h.play(), (Strings{"upsert a/x@1#uid-x", "upsert a/y@1#uid-y", "synced"}));
  h.client.list(listBody({obj("a", "x", "1")}, "20"));
  std::jthread thread([&](std::stop_token stop) { h.reflector->run(stop); });
  // waitExhausted() already saw the end of the first script: wait for the new watch.
  while (h.client.targets(true).size() < 2) std::this_thread::sleep_for(1ms);
  thread.request_stop();
  thread.join();
  EXPECT_EQ(h.sink.take(), (Strings{"remove a/y@1#uid-y", "synced"}));
}

}  // namespace
}  // namespace ng::kube
