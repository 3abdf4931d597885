// The controller's decisions against an in-memory API server (merge patches applied,
// resourceVersion preconditions checked, failures injectable) and a registry-backed
// Apply: what is written, in which order, and what is not written at all.

#include "control/kube_controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "control/kube_service.h"

namespace ng::control {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Every request the controller makes, in order, shared with the fake Apply.
struct Log {
  std::mutex mutex;
  std::vector<std::string> lines;
  void add(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mutex);
    return lines;
  }
  size_t count(std::string_view prefix) {
    std::lock_guard lock(mutex);
    return std::ranges::count_if(lines, [&](const std::string& l) { return l.starts_with(prefix); });
  }
};

class FakeApi final : public kube::ApiClient {
 public:
  explicit FakeApi(Log& log) : log_(log) {}
  void put(const json& svc) {
    std::lock_guard lock(mutex_);
    objects_[objectKey(svc)] = svc;
  }
  json object(const std::string& id) {
    std::lock_guard lock(mutex_);
    return objects_.at(id);
  }
  void failNext(int status, int times) {
    std::lock_guard lock(mutex_);
    fail_status_ = status;
    fail_times_ = times;
  }

  Response get(const std::string&) override { return {.status = 404}; }
  Response stream(const std::string&, const std::function<bool(std::string_view)>&) override { return {.status = 404}; }
  Response post(const std::string& target, const std::string& body) override {
    log_.add("POST " + target + " " + json::parse(body).value("reason", ""));
    return {.status = 201, .body = body};
  }
  void cancel() override {}

  Response patch(const std::string& target, const std::string& body, const std::string& content_type) override {
    std::lock_guard lock(mutex_);
    log_.add("PATCH " + target + " " + body);
    if (content_type != "application/merge-patch+json") return {.status = 415};
    if (fail_times_ > 0) {
      --fail_times_;
      return {.status = fail_status_, .body = "injected"};
    }
    // /api/v1/namespaces/NS/services/NAME[/status]
    std::string rest = target.substr(std::string("/api/v1/namespaces/").size());
    const bool status = rest.ends_with("/status");
    if (status) rest.resize(rest.size() - 7);
    const std::string id = rest.substr(0, rest.find('/')) + "/" + rest.substr(rest.rfind('/') + 1);
    auto it = objects_.find(id);
    if (it == objects_.end()) return {.status = 404};
    json p = json::parse(body);
    if (status) {
      it->second["status"].merge_patch(p["status"]);
    } else {
      const std::string want = p["metadata"].value("resourceVersion", "");
      if (!want.empty() && want != it->second["metadata"]["resourceVersion"]) return {.status = 409};
      p["metadata"].erase("resourceVersion");
      it->second.merge_patch(p);
      if (it->second["metadata"]["finalizers"].empty() && it->second["metadata"].contains("deletionTimestamp")) {
        objects_.erase(it);  // the API server lets it go
        return {.status = 200, .body = body};
      }
    }
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return {.status = 200, .body = it->second.dump()};
  }

 private:
  Log& log_;
  std::mutex mutex_;
  std::map<std::string, json> objects_;
  int fail_status_ = 0, fail_times_ = 0;
  uint64_t rv_ = 1000;
};

json service(const std::string& name, const char* cls = "nodegate.io/lb") {
  json s = json::parse(R"({"apiVersion":"v1","kind":"Service","metadata":{"namespace":"shop","resourceVersion":"1"},
    "spec":{"type":"LoadBalancer","ports":[{"name":"http","protocol":"TCP","port":80,"nodePort":31080}]},
    "status":{"loadBalancer":{}}})");
  s["metadata"]["name"] = name;
  s["metadata"]["uid"] = "uid-" + name;
  if (cls != nullptr) s["spec"]["loadBalancerClass"] = cls;
  return s;
}

json node(const std::string& name, const std::string& address) {
  json n = json::parse(R"({"metadata":{"resourceVersion":"1"},"status":{"addresses":[]}})");
  n["metadata"]["name"] = name;
  n["status"]["addresses"].push_back(json{{"type", "InternalIP"}, {"address", address}});
  return n;
}

class KubeControllerTest : public ::testing::Test {
 protected:
  KubeControllerTest()
      : dir_(std::filesystem::temp_directory_path() / ("ng-kube-ctl-" + std::to_string(::getpid()))),
        registry_((std::filesystem::create_directories(dir_), (dir_ / "lb.json").string())) {
    auto cfg = conf::parseConfig(R"(
dataplane = { ports = (
  { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; },
  { name = "int"; device = "d1"; role = "internal"; address = "10.200.0.1/24"; } ); };
pools = ( { name = "a"; cidrs = [ "10.100.0.100/30", "10.100.0.104/29" ]; } );
)", "t.conf");
    EXPECT_TRUE(cfg) << cfg.error().message;
    EXPECT_TRUE(registry_.load(*cfg));
  }
  ~KubeControllerTest() override {
    stop();
    std::filesystem::remove_all(dir_);
  }

  // Applies like ControlPlane::kubernetes() does, straight on the registry.
  std::optional<KubeController::Applied> apply(std::vector<KubeChange> changes, std::stop_token) {
    std::lock_guard lock(registry_mutex_);
    std::vector<KubeOutcome> outcomes;
    for (KubeChange& c : changes) {
      const std::string id = c.spec.id();
      log_.add((c.remove ? "APPLY remove " : "APPLY ensure ") + id);
      auto reply = c.remove ? registry_.removeKubernetes(id) : registry_.ensureKubernetes(c.spec, c.fallback);
      KubeOutcome o{.id = id};
      if (reply.status >= 400) o.error = reply.body.value("error", "");
      if (!c.remove && reply.status < 400) o.addresses = registry_.addressesOf(id);
      if (!c.remove && reply.status < 400) specs_[id] = c.spec;
      outcomes.push_back(std::move(o));
    }
    ++applies_;
    return KubeController::Applied{std::move(outcomes), applies_};
  }

  void start() {
    controller_ = std::make_unique<KubeController>(
        KubeController::Options{.settle = 5ms, .retry_initial = 20ms, .retry_max = 200ms}, api_,
        [this](std::vector<KubeChange> c, std::stop_token s) { return apply(std::move(c), s); }, &events_);
    thread_ = std::jthread([this](std::stop_token s) { controller_->run(s); });
  }
  void stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  // Lists: what the server has, then synced().
  void list(const std::vector<json>& services, const std::vector<json>& nodes) {
    for (const json& s : services) {
      api_.put(s);
      controller_->serviceSink().upsert(s);
    }
    for (const json& n : nodes) controller_->nodeSink().upsert(n);
    controller_->serviceSink().synced();
    controller_->nodeSink().synced();
  }
  // Delivers the server's current copy, as a watch would after a write.
  void watchEcho(const std::string& id) { controller_->serviceSink().upsert(api_.object(id)); }

  template <typename F>
  bool eventually(F done) {
    for (int i = 0; i < 400; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return done();
  }
  bool quiet() {  // nothing new logged for a while
    size_t before = log_.snapshot().size();
    std::this_thread::sleep_for(150ms);
    return log_.snapshot().size() == before;
  }

  std::filesystem::path dir_;
  LoadBalancerRegistry registry_;
  std::mutex registry_mutex_;
  std::map<std::string, LoadBalancerSpec> specs_;
  uint64_t applies_ = 0;
  Log log_;
  FakeApi api_{log_};
  KubeEventRecorder events_{api_};
  std::unique_ptr<KubeController> controller_;
  std::jthread thread_;
};

TEST_F(KubeControllerTest, ColdStartProgramsOursInOneApplyAndWritesOnlyWhatIsWrong) {
  json right = service("right");  // already carries our finalizer and the right status
  right["metadata"]["finalizers"] = json::array({"nodegate.io/cleanup"});
  right["status"]["loadBalancer"]["ingress"] = json::parse(R"([{"ip":"10.100.0.107","ipMode":"Proxy"}])");
  json fresh = service("fresh");
  json other = service("other", "someone.else/lb");
  json noclass = service("noclass", nullptr);
  start();
  list({right, fresh, other, noclass}, {node("n1", "10.200.0.11"), node("n2", "10.200.0.12")});
  ASSERT_TRUE(eventually([&] { return controller_->stats().synced && log_.count("PATCH") >= 2; }));
  ASSERT_TRUE(quiet());

  EXPECT_EQ(applies_, 1u) << "a cold start is one apply";
  EXPECT_EQ(registry_.addressesOf("shop/right"), std::vector<conf::IpAddress>{conf::IpAddress::parse("10.100.0.107").value()}) << "re-adopted, not reshuffled";
  EXPECT_EQ(registry_.addressesOf("shop/fresh"), std::vector<conf::IpAddress>{conf::IpAddress::parse("10.100.0.100").value()});
  EXPECT_EQ(specs_["shop/fresh"].nodes.size(), 2u);
  // Writes: fresh gets its finalizer (before the apply) and its status; right gets nothing.
  const auto lines = log_.snapshot();
  std::vector<std::string> writes;
  for (const auto& l : lines) {
    if (l.starts_with("PATCH") || l.starts_with("APPLY")) writes.push_back(l.substr(0, l.find(' ', 6)) + " " + l.substr(l.find(' ', 6) + 1, 40));
  }
  ASSERT_EQ(writes.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_TRUE(writes[0].starts_with("PATCH /api/v1/namespaces/shop/services/fresh {\"metadata\"")) << writes[0];
  EXPECT_TRUE(writes[1].starts_with("APPLY ensure shop/") && writes[2].starts_with("APPLY ensure shop/"));
  EXPECT_TRUE(writes[3].starts_with("PATCH /api/v1/namespaces/shop/services/fresh/status")) << writes[3];
  EXPECT_EQ(api_.object("shop/fresh")["status"]["loadBalancer"]["ingress"],
            json::parse(R"([{"ip":"10.100.0.100","ipMode":"Proxy"}])"));
  for (const auto& l : lines) {
    EXPECT_EQ(l.find("/other"), std::string::npos) << "never touch a Service of another class: " << l;
    EXPECT_EQ(l.find("/noclass"), std::string::npos) << l;
  }
  EXPECT_EQ(controller_->stats().ours, 2u);
}

TEST_F(KubeControllerTest, DeletionRemovesTheVipBeforeTheFinalizer) {
  start();
  list({service("web")}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return registry_.contains("shop/web") && log_.count("PATCH") == 2; }));
  watchEcho("shop/web");
  ASSERT_TRUE(quiet());

  json deleting = api_.object("shop/web");
  deleting["metadata"]["deletionTimestamp"] = "2026-11-24T06:00:00Z";
  api_.put(deleting);
  const size_t before = log_.snapshot().size();
  controller_->serviceSink().upsert(deleting);
  ASSERT_TRUE(eventually([&] { return !registry_.contains("shop/web") && log_.count("PATCH") == 3; }));
  ASSERT_TRUE(quiet());
  const auto lines = log_.snapshot();
  std::vector<std::string> after(lines.begin() + static_cast<ptrdiff_t>(before), lines.end());
  std::erase_if(after, [](const std::string& l) { return l.starts_with("POST"); });
  ASSERT_EQ(after.size(), 2u) << ::testing::PrintToString(after);
  EXPECT_EQ(after[0], "APPLY remove shop/web");
  EXPECT_TRUE(after[1].starts_with("PATCH /api/v1/namespaces/shop/services/web {\"metadata\":{\"finalizers\":[]"))
      << after[1];
  EXPECT_EQ(log_.count("POST /api/v1/namespaces/shop/events DeletedLoadBalancer"), 1u);
}

TEST_F(KubeControllerTest, TheForwardingModeAnnotationSetsTheModeAndIpModeVip) {
  json dsr = service("dsr");
  dsr["metadata"]["annotations"]["nodegate.io/forwarding-mode"] = "tunnel";
  start();
  list({dsr}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return registry_.contains("shop/dsr") && log_.count("PATCH") == 2; }));
  watchEcho("shop/dsr");
  ASSERT_TRUE(quiet());
  EXPECT_EQ(specs_["shop/dsr"].mode, conf::Mode::kTunnel);
  EXPECT_EQ(api_.object("shop/dsr")["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
  // Back to full-NAT: the status follows.
  json back = api_.object("shop/dsr");
  back["metadata"]["annotations"]["nodegate.io/forwarding-mode"] = "fullnat";
  api_.put(back);
  controller_->serviceSink().upsert(back);
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 3; }));
  EXPECT_EQ(specs_["shop/dsr"].mode, conf::Mode::kFullNat);
  EXPECT_EQ(api_.object("shop/dsr")["status"]["loadBalancer"]["ingress"][0]["ipMode"], "Proxy");
}

TEST_F(KubeControllerTest, AFinalizerLeftByACrashIsRemovedOnStart) {
  json half = service("half");  // deleted while we were down, our finalizer still on it
  half["metadata"]["finalizers"] = json::array({"example.com/keep", "nodegate.io/cleanup"});
  half["metadata"]["deletionTimestamp"] = "2026-11-24T06:00:00Z";
  start();
  list({half}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 1; }));
  ASSERT_TRUE(quiet());
  EXPECT_EQ(api_.object("shop/half")["metadata"]["finalizers"], json::array({"example.com/keep"}))
      << "only our finalizer goes";
  EXPECT_FALSE(registry_.contains("shop/half"));
}

TEST_F(KubeControllerTest, TypeChangeClearsStatusThenDropsTheFinalizer) {
  start();
  list({service("web")}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 2; }));
  watchEcho("shop/web");
  ASSERT_TRUE(quiet());
  json changed = api_.object("shop/web");
  changed["spec"]["type"] = "ClusterIP";
  api_.put(changed);
  controller_->serviceSink().upsert(changed);
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 4; }));
  const auto lines = log_.snapshot();
  std::vector<std::string> patches;
  for (const auto& l : lines) {
    if (l.starts_with("PATCH")) patches.push_back(l);
  }
  EXPECT_EQ(patches[2], "PATCH /api/v1/namespaces/shop/services/web/status {\"status\":{\"loadBalancer\":{\"ingress\":null}}}");
  EXPECT_TRUE(patches[3].find("\"finalizers\":[]") != std::string::npos) << patches[3];
  EXPECT_FALSE(registry_.contains("shop/web"));
  EXPECT_TRUE(api_.object("shop/web")["status"]["loadBalancer"].empty());
}

TEST_F(KubeControllerTest, NodeChangesReprogramOnlyWhenTheCandidateSetChanges) {
  start();
  list({service("a"), service("b")}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 4; }));
  ASSERT_TRUE(quiet());
  const size_t applies = log_.count("APPLY");

  // A heartbeat: new resourceVersion, same addresses. Nothing to do.
  json beat = node("n1", "10.200.0.11");
  beat["metadata"]["resourceVersion"] = "2";
  beat["status"]["conditions"] = json::array({json{{"type", "Ready"}, {"status", "False"}}});
  controller_->nodeSink().upsert(beat);
  ASSERT_TRUE(quiet());
  EXPECT_EQ(log_.count("APPLY"), applies) << "NotReady does not remove a node";

  ASSERT_TRUE(eventually([&] { return controller_->nodeReady("n1") == "False"; }));
  EXPECT_EQ(controller_->nodeReady("nope"), std::nullopt);

  // A new node: both Services reprogrammed, in one apply, no status write (same address).
  controller_->nodeSink().upsert(node("n2", "10.200.0.12"));
  ASSERT_TRUE(eventually([&] { return log_.count("APPLY") == applies + 2; }));
  ASSERT_TRUE(quiet());
  EXPECT_EQ(applies_, 2u);
  EXPECT_EQ(specs_["shop/a"].nodes.size(), 2u);
  EXPECT_EQ(log_.count("PATCH"), 4u);

  // Excluded by label: gone from both.
  json excluded = node("n2", "10.200.0.12");
  excluded["metadata"]["labels"][std::string(kExcludeLabel)] = "true";
  controller_->nodeSink().upsert(excluded);
  ASSERT_TRUE(eventually([&] { return specs_["shop/b"].nodes.size() == 1; }));
}

TEST_F(KubeControllerTest, FailedWritesAreRetriedWithBackOff) {
  api_.failNext(500, 3);  // the finalizer add fails three times
  start();
  list({service("web")}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return registry_.contains("shop/web") && log_.count("PATCH") == 5; }));
  ASSERT_TRUE(quiet());
  EXPECT_EQ(controller_->stats().write_failures, 3u);
  EXPECT_EQ(controller_->stats().retrying, 0u);
  EXPECT_EQ(api_.object("shop/web")["status"]["loadBalancer"]["ingress"][0]["ip"], "10.100.0.100");
  EXPECT_FALSE(controller_->stats().last_error.empty());
}

TEST_F(KubeControllerTest, ABadServiceIsReportedAndTheLastGoodKeepsServing) {
  start();
  list({service("web")}, {node("n1", "10.200.0.11")});
  ASSERT_TRUE(eventually([&] { return log_.count("PATCH") == 2; }));
  watchEcho("shop/web");
  ASSERT_TRUE(quiet());
  json bad = api_.object("shop/web");
  bad["spec"]["loadBalancerSourceRanges"] = json::array({"10.0.0.0/8", "nonsense"});
  controller_->serviceSink().upsert(bad);
  ASSERT_TRUE(eventually([&] { return log_.count("POST /api/v1/namespaces/shop/events LoadBalancerWarning") == 1; }));
  ASSERT_TRUE(quiet());
  EXPECT_TRUE(registry_.contains("shop/web"));
  EXPECT_EQ(log_.count("APPLY"), 1u) << "the last good spec stays; nothing reprogrammed";

  // A new Service with the same problem fails closed: not programmed, a warning.
  json fresh = service("fresh");
  fresh["spec"]["loadBalancerSourceRanges"] = json::array({"nonsense"});
  api_.put(fresh);
  controller_->serviceSink().upsert(fresh);
  ASSERT_TRUE(eventually([&] { return log_.count("POST /api/v1/namespaces/shop/events SyncLoadBalancerFailed") == 1; }));
  EXPECT_FALSE(registry_.contains("shop/fresh"));
}

}  // namespace
}  // namespace ng::control
