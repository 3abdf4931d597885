#include "control/control_plane.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ng::control {
namespace {

using nlohmann::json;

uint32_t ip(const char* text) { return conf::parseIpv4(text).value(); }

class FakePublisher final : public fwd::SnapshotPublisher {
 public:
  void publish(std::unique_ptr<const fwd::ForwardingSnapshot> next) override {
    current_ = std::move(next);
    ++published;
  }
  const fwd::ForwardingSnapshot* current() const noexcept override { return current_.get(); }
  int published = 0;

 private:
  std::unique_ptr<const fwd::ForwardingSnapshot> current_;
};

// Every probe succeeds at once; the engine is never started, so targets keep their
// optimistic initial state (up) unless a test says otherwise.
class AlwaysUp final : public health::Prober {
 public:
  void probe(const health::ProbeSpec&, std::chrono::milliseconds,
             std::function<void(health::ProbeOutcome)> done) override {
    done(health::ProbeOutcome::ok("HTTP 200", 200));
  }
};

class ControlPlaneTest : public ::testing::Test {
 protected:
  ControlPlaneTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ng-cp-test.XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    writeConfig("");
  }
  ~ControlPlaneTest() override { std::filesystem::remove_all(dir_); }

  void writeConfig(const std::string& extra_services) {
    std::ofstream(path()) << R"(
dataplane = {
  ports = (
    { name = "ext"; device = "d0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "d1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
state_dir = ")" << dir_.string() << R"(";
pools = ( { name = "a"; cidrs = [ "10.100.0.100/30" ]; } );
nodes = ( { name = "n1"; address = "10.200.0.11"; } );
services = ( { namespace = "cfg"; name = "static"; vip = "10.100.0.100";
               ports = ( { protocol = "TCP"; port = 80; node_port = 30080; } ); } )" << extra_services << R"(
);
)";
  }
  [[nodiscard]] std::string path() const { return (dir_ / "nodegate.conf").string(); }

  std::unique_ptr<ControlPlane> make() {
    auto cfg = conf::loadConfig(path());
    EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
    return std::make_unique<ControlPlane>(path(), *cfg, publisher_, model_, engine_, [](std::string) {});
  }
  // One call, answered at once or by the next flush (a second later: past the gap).
  LoadBalancerAnswer call(ControlPlane& cp, LoadBalancerCall::Op op, const char* body = "{}") {
    std::optional<LoadBalancerAnswer> got;
    cp.loadBalancers(LoadBalancerCall{.op = op, .namespace_name = "shop", .name = "web", .body = json::parse(body)},
                     [&got](LoadBalancerAnswer a) { got = std::move(a); });
    if (!got) cp.flush(now_ += std::chrono::seconds(1));
    EXPECT_TRUE(got.has_value());
    return got.value_or(LoadBalancerAnswer{.status = 0});
  }
  const fwd::ServicePort* find(const char* vip, uint16_t port) const {
    return publisher_.current()->find(ip(vip), port, IPPROTO_TCP);
  }

  std::filesystem::path dir_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  FakePublisher publisher_;
  std::shared_ptr<StatusModel> model_ = std::make_shared<StatusModel>(std::vector<WorkerSource>{}, 1);
  health::HealthEngine engine_{[](asio::io_context&) { return std::make_unique<AlwaysUp>(); }, nullptr};
};

constexpr const char* kWeb = R"({"ports": [{"port": 8080, "nodePort": 31080}],
                                 "nodes": [{"name": "n1", "address": "10.200.0.11"}, {"name": "n2", "address": "10.200.0.12"}]})";

TEST_F(ControlPlaneTest, EnsureAndDeletePublishGenerationsWithTheVip) {
  auto cp = make();
  ASSERT_TRUE(cp->start().has_value());
  EXPECT_EQ(cp->generation(), 1u);
  ASSERT_NE(find("10.100.0.100", 80), nullptr);

  const auto put = call(*cp, LoadBalancerCall::Op::kEnsure, kWeb);
  ASSERT_EQ(put.status, 200) << put.body;
  const json body = json::parse(put.body);
  EXPECT_EQ(body["ingress"][0]["ip"], "10.100.0.101");
  EXPECT_EQ(body["generation"], 2);
  const fwd::ServicePort* sp = find("10.100.0.101", 8080);
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->backends.size(), 2u);
  EXPECT_EQ(sp->backends[1].node_port, 31080);
  EXPECT_EQ(model_->view()->generation, 2u) << "the status view follows the published generation";
  ASSERT_EQ(model_->view()->vips.size(), 2u);
  EXPECT_EQ(model_->view()->vips[0].source, "config");
  EXPECT_EQ(model_->view()->vips[1].source, "api");
  EXPECT_EQ(engine_.targetCount(), 2u) << "both nodes probed (kube-proxy /healthz)";

  EXPECT_EQ(json::parse(call(*cp, LoadBalancerCall::Op::kEnsure, kWeb).body)["generation"], 2) << "no-op";
  EXPECT_EQ(publisher_.published, 2);

  const auto del = call(*cp, LoadBalancerCall::Op::kDelete);
  ASSERT_EQ(del.status, 200);
  EXPECT_EQ(json::parse(del.body)["generation"], 3);
  EXPECT_EQ(find("10.100.0.101", 8080), nullptr);
  EXPECT_EQ(call(*cp, LoadBalancerCall::Op::kGet).status, 404);
}

TEST_F(ControlPlaneTest, ABurstOfChangesIsPublishedAsOneGeneration) {
  auto cp = make();
  ASSERT_TRUE(cp->start().has_value());
  std::vector<LoadBalancerAnswer> answers;
  for (int i = 0; i < 100; ++i) {  // 100 updates to one Service: its port changes each time
    const std::string body = R"({"ports": [{"port": )" + std::to_string(8000 + i) + R"(, "nodePort": 31080}],
                                 "nodes": [{"name": "n1", "address": "10.200.0.11"}]})";
    cp->loadBalancers(LoadBalancerCall{.op = LoadBalancerCall::Op::kEnsure, .namespace_name = "shop", .name = "web",
                                       .body = json::parse(body)},
                      [&answers](LoadBalancerAnswer a) { answers.push_back(std::move(a)); });
  }
  EXPECT_TRUE(answers.empty()) << "accepted changes are answered once published";
  cp->flush(now_ += std::chrono::seconds(1));
  ASSERT_EQ(answers.size(), 100u);
  for (const auto& a : answers) EXPECT_EQ(json::parse(a.body)["generation"], 2) << a.body;
  EXPECT_EQ(publisher_.published, 2) << "boot + one generation for the burst";
  EXPECT_NE(find("10.100.0.101", 8099), nullptr) << "the last update wins";
  EXPECT_EQ(find("10.100.0.101", 8000), nullptr);

  // Within the gap a flush waits; after it, the next change is published.
  cp->loadBalancers(LoadBalancerCall{.op = LoadBalancerCall::Op::kDelete, .namespace_name = "shop", .name = "web"},
                    [&answers](LoadBalancerAnswer a) { answers.push_back(std::move(a)); });
  cp->flush(now_ + ControlPlane::kCoalesceGap / 2);
  EXPECT_EQ(answers.size(), 100u);
  cp->flush(now_ + ControlPlane::kCoalesceGap);
  ASSERT_EQ(answers.size(), 101u);
  EXPECT_EQ(json::parse(answers.back().body)["generation"], 3);
}

TEST_F(ControlPlaneTest, RestartKeepsEveryAddress) {
  {
    auto cp = make();
    ASSERT_TRUE(cp->start().has_value());
    ASSERT_EQ(call(*cp, LoadBalancerCall::Op::kEnsure, kWeb).status, 200);
  }
  auto cp = make();
  ASSERT_TRUE(cp->start().has_value());
  ASSERT_NE(find("10.100.0.101", 8080), nullptr) << "restored before the first generation";
  EXPECT_EQ(json::parse(call(*cp, LoadBalancerCall::Op::kGet).body)["ingress"][0]["ip"], "10.100.0.101");
}

TEST_F(ControlPlaneTest, CorruptStateRefusesToStart) {
  std::ofstream(dir_ / "loadbalancers.json") << "{\"format\": \"nodegate-state/1\", \"sha256\": \"ab\", \"data\": {}}";
  auto cp = make();
  auto started = cp->start();
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().find("checksum mismatch"), std::string::npos) << started.error();
  EXPECT_EQ(publisher_.published, 0);
}

TEST_F(ControlPlaneTest, ReloadThatWouldTakeAnAllocatedAddressIsRejected) {
  auto cp = make();
  ASSERT_TRUE(cp->start().has_value());
  ASSERT_EQ(call(*cp, LoadBalancerCall::Op::kEnsure, kWeb).status, 200);  // 10.100.0.101
  writeConfig(R"(,
  { namespace = "cfg"; name = "thief"; vip = "10.100.0.101"; ports = ( { protocol = "TCP"; port = 9; node_port = 30009; } ); })");
  const ReloadResult r = cp->reload("test");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("10.100.0.101 is allocated to load balancer shop/web"), std::string::npos) << r.message;
  EXPECT_EQ(cp->generation(), 2u);
  ASSERT_NE(find("10.100.0.101", 8080), nullptr);

  writeConfig(R"(,
  { namespace = "cfg"; name = "other"; vip = "10.100.0.50"; ports = ( { protocol = "TCP"; port = 9; node_port = 30009; } ); })");
  const ReloadResult ok = cp->reload("test");
  EXPECT_TRUE(ok.ok) << ok.message;
  EXPECT_EQ(cp->generation(), 3u);
  EXPECT_NE(find("10.100.0.50", 9), nullptr);
  EXPECT_NE(find("10.100.0.101", 8080), nullptr) << "declared load balancers survive a reload";
}

}  // namespace
}  // namespace ng::control
