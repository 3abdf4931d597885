#include "control/kube/reflector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace ng::kube {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A watch that ends this soon without a single line was not worth its request: the next
// one waits a back-off step, so a server that closes every watch at once is not hammered.
constexpr auto kUnproductiveWatch = std::chrono::seconds{1};
// A continue token that expires again and again (a very busy collection): after this many
// restarts in a row the list counts as failed and backs off.
constexpr int kMaxListRestarts = 3;

std::string stringAt(const json& object, const char* a, const char* b) {
  if (!object.is_object()) return {};
  const auto outer = object.find(a);
  if (outer == object.end() || !outer->is_object()) return {};
  const auto inner = outer->find(b);
  if (inner == outer->end() || !inner->is_string()) return {};
  return inner->get<std::string>();
}

std::string resourceVersionOf(const json& object) { return stringAt(object, "metadata", "resourceVersion"); }
std::string uidOf(const json& object) { return stringAt(object, "metadata", "uid"); }

// Percent-encodes a query value (RFC 3986 unreserved characters stay).
std::string queryEscape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string describe(std::string_view what, const ApiClient::Response& r) {
  std::string text(what);
  if (r.status == 0) return text + ": " + (r.error.empty() ? "transport error" : r.error);
  text += ": HTTP " + std::to_string(r.status);
  // A Kubernetes Status body says why in "message".
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("message") && body["message"].is_string()) {
    text += " (" + body["message"].get<std::string>() + ")";
  }
  return text;
}

}  // namespace

std::string objectKey(const json& object) {
  const std::string name = stringAt(object, "metadata", "name");
  if (name.empty()) return {};
  const std::string ns = stringAt(object, "metadata", "namespace");
  return ns.empty() ? name : ns + "/" + name;
}

Reflector::Reflector(ApiClient& client, Options options, ReflectorSink& sink)
    : client_(client),
      options_(std::move(options)),
      sink_(sink),
      backoff_(options_.backoff_initial, options_.backoff_max),
      rng_(std::random_device{}()) {}

ReflectorStatus Reflector::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

std::string Reflector::listTarget(const std::string& continue_token) const {
  std::string t = options_.path;
  t += options_.path.find('?') == std::string::npos ? '?' : '&';
  t += "limit=" + std::to_string(options_.page_size);
  if (!continue_token.empty()) t += "&continue=" + queryEscape(continue_token);
  return t;
}

std::string Reflector::watchTarget() {
  const int64_t lo = options_.min_watch_timeout.count();
  const int64_t hi = std::max(lo, options_.max_watch_timeout.count());
  const int64_t timeout = std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  std::string t = options_.path;
  t += options_.path.find('?') == std::string::npos ? '?' : '&';
  t += "watch=1&resourceVersion=" + queryEscape(rv_) + "&allowWatchBookmarks=true&timeoutSeconds=" +
       std::to_string(timeout);
  return t;
}

void Reflector::sleepFor(std::chrono::milliseconds wait, std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, stop, wait, [] { return false; });
}

void Reflector::succeeded() {
  backoff_.reset();
  std::lock_guard lock(mutex_);
  status_.last_contact = std::chrono::system_clock::now();
  if (status_.failing_since) {
    const auto for_s =
        std::chrono::duration_cast<std::chrono::seconds>(status_.last_contact - *status_.failing_since).count();
    spdlog::info("kube {}: API server reachable again after {} s and {} failed calls", options_.path, for_s,
                 status_.consecutive_failures);
    status_.failing_since.reset();
  }
  status_.consecutive_failures = 0;
}

void Reflector::failed(const std::string& what, std::chrono::milliseconds floor, std::stop_token& stop) {
  const std::chrono::milliseconds wait = backoff_.next(floor);
  {
    std::lock_guard lock(mutex_);
    ++status_.failures;
    ++status_.consecutive_failures;
    status_.last_backoff = wait;
    const bool changed = !status_.failing_since || status_.last_error != what;
    status_.last_error = what;
    if (!status_.failing_since) status_.failing_since = std::chrono::system_clock::now();
    if (changed) {
      spdlog::warn("kube {}: {}; retrying with back-off (this {} ms, cap {} ms); the last good state is kept",
                   options_.path, what, wait.count(), options_.backoff_max.count());
    } else {
      spdlog::debug("kube {}: {}; retry in {} ms", options_.path, what, wait.count());
    }
  }
  sleepFor(wait, stop);
}

bool Reflector::list(std::stop_token& stop) {
  std::unordered_map<std::string, json> fresh;
  std::vector<std::string> order;  // list order, for a deterministic delivery
  std::string continue_token;
  std::string snapshot_rv;
  int restarts = 0;
  size_t bad_items = 0;
  for (;;) {
    if (stop.stop_requested()) return false;
    ApiClient::Response r = client_.get(listTarget(continue_token));
    if (stop.stop_requested()) return false;
    if (r.status == 410 && !continue_token.empty()) {
      // The continue token outlived its snapshot (etcd compacted it): start over.
      if (++restarts > kMaxListRestarts) {
        failed("list: continue token expired " + std::to_string(restarts) + " times in a row", r.retry_after, stop);
        return false;
      }
      spdlog::info("kube {}: continue token expired (410) after {} objects; restarting the list", options_.path,
                   fresh.size());
      fresh.clear();
      order.clear();
      continue_token.clear();
      continue;
    }
    if (r.status != 200) {
      failed(describe("list", r), r.retry_after, stop);
      return false;
    }
    json page = json::parse(r.body, nullptr, false);
    if (!page.is_object() || !page.contains("metadata") || !page["metadata"].is_object()) {
      failed("list: answer is not a Kubernetes list", std::chrono::milliseconds{0}, stop);
      return false;
    }
    succeeded();
    if (auto items = page.find("items"); items != page.end() && items->is_array()) {
      for (json& item : *items) {
        const std::string key = objectKey(item);
        if (key.empty() || resourceVersionOf(item).empty()) {
          ++bad_items;
          continue;
        }
        auto [it, inserted] = fresh.insert_or_assign(key, std::move(item));
        if (inserted) order.push_back(key);
      }
    }
    continue_token = stringAt(page, "metadata", "continue");
    snapshot_rv = stringAt(page, "metadata", "resourceVersion");
    if (continue_token.empty()) break;
  }
  if (snapshot_rv.empty()) {
    failed("list: no metadata.resourceVersion in the answer", std::chrono::milliseconds{0}, stop);
    return false;
  }
  if (bad_items > 0) {
    std::lock_guard lock(mutex_);
    status_.malformed += bad_items;
    spdlog::warn("kube {}: list: ignored {} items without metadata.name or resourceVersion", options_.path,
                 bad_items);
  }

  // Diff against what the sink has: deletions we never saw first, then news and changes.
  std::vector<std::string> gone;
  for (const auto& [key, cached] : cache_) {
    if (!fresh.contains(key)) gone.push_back(key);
  }
  std::sort(gone.begin(), gone.end());
  for (const std::string& key : gone) {
    auto node = cache_.extract(key);
    sink_.remove(node.mapped().object);
  }
  size_t upserts = 0;
  for (const std::string& key : order) {
    json& object = fresh[key];
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.resource_version == resourceVersionOf(object) &&
        it->second.uid == uidOf(object)) {
      continue;  // unchanged: not touched
    }
    apply(key, std::move(object));
    ++upserts;
  }
  rv_ = snapshot_rv;
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = !status_.synced;
    status_.synced = true;
    ++status_.lists;
    status_.resource_version = rv_;
    status_.objects = cache_.size();
  }
  sink_.synced();
  if (first) {
    spdlog::info("kube {}: synced {} objects at resourceVersion {}", options_.path, cache_.size(), rv_);
  } else {
    spdlog::info("kube {}: relisted {} objects at resourceVersion {}: {} upserts, {} removals", options_.path,
                 cache_.size(), rv_, upserts, gone.size());
  }
  return true;
}

void Reflector::apply(const std::string& key, json object) {
  std::string rv = resourceVersionOf(object);
  std::string uid = uidOf(object);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    it = cache_.emplace(key, Cached{std::move(object), std::move(rv), std::move(uid)}).first;
    sink_.upsert(it->second.object);
    return;
  }
  Cached& cached = it->second;
  if (cached.uid != uid) {
    // Deleted and created again under the same name while we were not looking.
    sink_.remove(cached.object);
  } else if (cached.resource_version == rv) {
    return;  // a duplicate of what was delivered
  }
  cached = Cached{std::move(object), std::move(rv), std::move(uid)};
  sink_.upsert(cached.object);
}

bool Reflector::handleLine(std::string_view line, WatchEnd& end, size_t& delivered) {
  json event = json::parse(line, nullptr, false);
  const auto malformed = [&](const char* why) {
    {
      std::lock_guard lock(mutex_);
      ++status_.malformed;
    }
    const std::string_view shown = line.substr(0, 200);
    watch_error_ = std::string("malformed watch event (") + why + "): " + std::string(shown);
    end = WatchEnd::kMalformed;
    return false;
  };
  if (!event.is_object()) return malformed("not a JSON object");
  const auto type_it = event.find("type");
  const auto object_it = event.find("object");
  if (type_it == event.end() || !type_it->is_string()) return malformed("no type");
  if (object_it == event.end() || !object_it->is_object()) return malformed("no object");
  const std::string type = type_it->get<std::string>();
  json& object = *object_it;

  if (type == "ERROR") {
    const int code = object.contains("code") && object["code"].is_number_integer() ? object["code"].get<int>() : 0;
    const std::string message = object.contains("message") && object["message"].is_string()
                                    ? object["message"].get<std::string>()
                                    : std::string();
    if (code == 410) {
      watch_error_ = message;
      end = WatchEnd::kExpired;
    } else {
      watch_error_ = "watch: ERROR event, code " + std::to_string(code) + (message.empty() ? "" : " (" + message + ")");
      end = WatchEnd::kFailed;
    }
    return false;
  }

  const std::string rv = resourceVersionOf(object);
  if (rv.empty()) return malformed("no metadata.resourceVersion");
  if (type == "BOOKMARK") {
    // Only metadata.resourceVersion is meaningful: the next watch resumes from it.
  } else if (type == "ADDED" || type == "MODIFIED") {
    const std::string key = objectKey(object);
    if (key.empty()) return malformed("no metadata.name");
    apply(key, std::move(object));
    ++delivered;
  } else if (type == "DELETED") {
    const std::string key = objectKey(object);
    if (key.empty()) return malformed("no metadata.name");
    if (auto node = cache_.extract(key)) {
      // The event carries the last state; if it is of another incarnation than ours
      // (both came and went unseen), ours is the one the sink knows.
      const std::string uid = uidOf(object);
      sink_.remove(uid.empty() || uid == node.mapped().uid ? object : node.mapped().object);
      ++delivered;
    }
  } else {
    return malformed("unknown type");
  }
  rv_ = rv;
  std::lock_guard lock(mutex_);
  ++status_.events;
  status_.resource_version = rv_;
  status_.objects = cache_.size();
  status_.last_contact = std::chrono::system_clock::now();
  return true;
}

Reflector::WatchEnd Reflector::watch(std::stop_token& stop, std::chrono::milliseconds& floor) {
  const std::string target = watchTarget();
  {
    std::lock_guard lock(mutex_);
    ++status_.watches;
  }
  watch_error_.clear();
  WatchEnd end = WatchEnd::kEnded;
  size_t lines = 0;
  size_t delivered = 0;
  bool contact = false;
  const auto started = Clock::now();
  ApiClient::Response r = client_.stream(target, [&](std::string_view line) {
    if (stop.stop_requested()) {
      end = WatchEnd::kStopped;
      return false;
    }
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
    ++lines;
    const bool go_on = handleLine(line, end, delivered);
    if (go_on && !contact) {
      contact = true;
      succeeded();
    }
    return go_on;
  });
  if (stop.stop_requested()) return WatchEnd::kStopped;
  floor = r.retry_after;
  if (r.status == 410) {
    watch_error_ = describe("watch", r);
    return WatchEnd::kExpired;
  }
  if (r.status < 200 || r.status >= 300) {
    watch_error_ = describe("watch", r);
    return WatchEnd::kFailed;
  }
  if (end != WatchEnd::kEnded) return end;
  if (lines == 0 && Clock::now() - started < kUnproductiveWatch) {
    watch_error_ = r.error.empty() ? std::string() : "watch: " + r.error + " before any event";
    return WatchEnd::kUnproductive;
  }
  if (lines == 0) succeeded();  // a quiet watch that ran its course is a success too
  if (!r.error.empty()) spdlog::debug("kube {}: watch ended: {}; watching again from {}", options_.path, r.error, rv_);
  return WatchEnd::kEnded;
}

void Reflector::run(std::stop_token stop) {
  // Cuts a call in flight short; a back-off wait watches `stop` itself.
  std::stop_callback cancel_on_stop(stop, [this] { client_.cancel(); });
  bool need_list = true;
  uint32_t expiries_in_a_row = 0;
  while (!stop.stop_requested()) {
    if (need_list) {
      if (!list(stop)) continue;  // list() has backed off
      need_list = false;
    }
    std::chrono::milliseconds floor{0};
    const WatchEnd end = watch(stop, floor);
    if (end != WatchEnd::kExpired) expiries_in_a_row = 0;
    switch (end) {
      case WatchEnd::kStopped:
        return;
      case WatchEnd::kEnded:
        break;  // watch again from the last RV seen
      case WatchEnd::kExpired: {
        need_list = true;
        {
          std::lock_guard lock(mutex_);
          ++status_.relists_after_expiry;
        }
        spdlog::info("kube {}: resourceVersion {} expired (410{}); relisting", options_.path, rv_,
                     watch_error_.empty() ? "" : ": " + watch_error_);
        // Expired again right after a fresh list: the server is in trouble, do not spin.
        if (++expiries_in_a_row > 1) {
          const auto wait = backoff_.next(floor);
          {
            std::lock_guard lock(mutex_);
            status_.last_backoff = wait;
          }
          sleepFor(wait, stop);
        }
        break;
      }
      case WatchEnd::kUnproductive:
        if (!watch_error_.empty()) {
          failed(watch_error_, floor, stop);
        } else {
          const auto wait = backoff_.next(floor);
          {
            std::lock_guard lock(mutex_);
            status_.last_backoff = wait;
          }
          sleepFor(wait, stop);
        }
        break;
      case WatchEnd::kMalformed:  // counted; watch again from the last good RV, after a back-off
      case WatchEnd::kFailed:
        failed(watch_error_, floor, stop);
        break;
    }
  }
}

}  // namespace ng::kube
