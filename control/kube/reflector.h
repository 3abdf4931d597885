#pragma once
// List + watch of one collection (KUBERNETES.md "List and watch"), delivering only
// changes to a sink, like client-go's reflector + DeltaFIFO but without a thread per
// anything: everything runs on the thread that calls run().
//
//   LIST  path?limit=N[&continue=T]   pages until metadata.continue is empty; a 410 on a
//                                     continue restarts the list; the last page's
//                                     metadata.resourceVersion is the snapshot.
//   WATCH path?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=S
//                                     S random in [min, max]; one event per line.
//
// Delivery (to the sink, on run()'s thread, in order): the cache is keyed by
// namespace/name and remembers the last delivered state of each object.
//   - ADDED/MODIFIED: upsert() when the object is new or its resourceVersion differs from
//     the one delivered (a duplicate is not delivered); under a new UID, remove(old) first.
//   - DELETED: remove() with the event's object (the last state), once; unknown → nothing.
//   - BOOKMARK: only the resourceVersion is stored.
//   - every LIST (the first and every relist): diffed against the cache: remove() for
//     objects gone, remove(old)+upsert(new) for a new UID, upsert() for a changed RV,
//     nothing for unchanged ones; then synced().
// Recovery:
//   - ERROR event with code 410, or HTTP 410 on the watch → relist (RV "") and diff.
//   - the watch ends (timeout, server closed, cut) → watch again from the last RV seen.
//   - 429, 5xx, other statuses, transport errors, other ERROR events → wait (exponential
//     back-off with jitter, Retry-After as a floor), then retry what failed;
//     failing_since is set from the first failure until the next success.
//   - a malformed line (not JSON, no type, object without metadata.name or
//     resourceVersion) is logged, counted, and the watch restarted from the last RV.
// Logging: once per state change (synced, failing, recovered, expired), not per event.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "control/kube/api_client.h"
#include "control/kube/backoff.h"

namespace ng::kube {

class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // Called on the reflector's thread, in order.
  virtual void upsert(const nlohmann::json& object) = 0;  // new, or changed (its RV differs from the last delivered)
  virtual void remove(const nlohmann::json& object) = 0;  // gone (the last known state)
  virtual void synced() = 0;  // a full LIST has been delivered (first time, and after every relist)
};

struct ReflectorStatus {
  bool synced = false;                                                 // a full LIST was delivered at least once
  std::string resource_version;                                        // last seen
  std::optional<std::chrono::system_clock::time_point> failing_since;  // unset while healthy
  std::string last_error;
  std::chrono::system_clock::time_point last_contact{};                // last successful response
  uint64_t lists = 0, watches = 0, relists_after_expiry = 0;
  // Added: counters and the retry state, for the status API and tests.
  uint64_t events = 0;             // watch events received (all types)
  uint64_t malformed = 0;          // lines that could not be understood
  uint64_t failures = 0;           // failed calls (each followed by a back-off)
  uint32_t consecutive_failures = 0;
  std::chrono::milliseconds last_backoff{0};  // the last wait chosen
  size_t objects = 0;              // objects in the cache
};

class Reflector {
 public:
  struct Options {
    std::string path;                // "/api/v1/services" or "/api/v1/nodes" (may carry a ?query)
    size_t page_size = 500;
    std::chrono::seconds min_watch_timeout{300}, max_watch_timeout{600};  // timeoutSeconds, random in range
    std::chrono::milliseconds backoff_initial{800}, backoff_max{30000};    // x2 per failure, with jitter
  };
  // `client` and `sink` must outlive the reflector; the client's cancel() is called when
  // run()'s stop is requested (so give the reflector a client of its own, or one shared
  // only with users that stop together: see HttpApiClient).
  Reflector(ApiClient& client, Options options, ReflectorSink& sink);
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Blocks, listing and watching until stop is requested; returns promptly then (a call
  // in flight is cancelled, a back-off wait is cut short). Never throws for anything the
  // server sends. May be called again after it returned: the cache is kept, the next
  // round starts with a LIST that is diffed against it.
  void run(std::stop_token stop);
  [[nodiscard]] ReflectorStatus status() const;  // any thread

 private:
  // How one watch ended: kUnproductive = no line and under a second (see reflector.cc).
  enum class WatchEnd { kEnded, kExpired, kFailed, kMalformed, kUnproductive, kStopped };
  struct Cached {
    nlohmann::json object;
    std::string resource_version;
    std::string uid;
  };

  // false when the LIST failed (status updated; the caller backs off).
  bool list(std::stop_token& stop);
  WatchEnd watch(std::stop_token& stop, std::chrono::milliseconds& floor);
  // One watch line; false ends the watch with `end` set.
  bool handleLine(std::string_view line, WatchEnd& end, size_t& delivered);
  void apply(const std::string& key, nlohmann::json object);  // ADDED / MODIFIED
  void succeeded();
  void failed(const std::string& what, std::chrono::milliseconds floor, std::stop_token& stop);
  void sleepFor(std::chrono::milliseconds wait, std::stop_token& stop);
  [[nodiscard]] std::string watchTarget();
  [[nodiscard]] std::string listTarget(const std::string& continue_token) const;

  ApiClient& client_;
  const Options options_;
  ReflectorSink& sink_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, Cached> cache_;  // run()'s thread only
  std::string rv_;                                  // run()'s thread only; mirrored in status_
  std::string watch_error_;                         // why the last watch ended (run()'s thread)

  mutable std::mutex mutex_;  // guards status_, and is the mutex of wake_
  std::condition_variable_any wake_;
  ReflectorStatus status_;
};

// "namespace/name" (or "name" for cluster-scoped objects); "" when metadata.name is missing.
[[nodiscard]] std::string objectKey(const nlohmann::json& object);

}  // namespace ng::kube
