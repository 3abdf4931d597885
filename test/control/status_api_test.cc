#include "control/status_api.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "conf/config.h"
#include "control/compiler.h"

namespace ng::control {
namespace {

using nlohmann::json;

conf::Config twoServices() {
  auto cfg = conf::parseConfig(R"(
dataplane = {
  ports = (
    { name = "ext"; device = "net_null0"; role = "external"; address = "10.100.0.1/24"; },
    { name = "int"; device = "net_null1"; role = "internal"; address = "10.200.0.1/24"; }
  );
};
nodes = ( { name = "n1"; address = "10.200.0.11"; }, { name = "n2"; address = "10.200.0.12"; } );
services = (
  { namespace = "shop"; name = "web"; vip = "10.100.0.100";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = 30053; } ); },
  { namespace = "shop"; name = "api"; vip = "10.100.0.101"; external_traffic_policy = "Local";
    health_check_node_port = 32000;
    ports = ( { name = "https"; protocol = "TCP"; port = 443; node_port = 30443; } ); }
);
)", "test.conf");
  EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().message);
  return *cfg;
}

// Two workers' counters and backend stats, a compiled generation, health from a map.
struct Box {
  fwd::WorkerCounters counters[2];
  fwd::BackendStats stats[2];
  std::shared_ptr<StatusModel> model;
  SnapshotCompiler compiler{1009};
  std::map<std::string, HealthDetail> health;  // by probe URL
  StatusSources sources;

  Box() {
    model = std::make_shared<StatusModel>(
        std::vector<WorkerSource>{
            {.id = 0, .lcore = 1, .counters = &counters[0], .backend_stats = &stats[0], .flow_capacity = 100,
             .flow6_capacity = 1024},
            {.id = 1, .lcore = 2, .counters = &counters[1], .backend_stats = &stats[1], .flow_capacity = 100,
             .flow6_capacity = 1024}},
        1'000'000'000);
    (void)compiler.compile(twoServices(), 1);
    model->publish(compiler.lastStatus());
    sources.model = model;
    sources.ready = [] { return true; };
    sources.health = [this](const nodeport::ProbeTarget& t) -> std::optional<HealthDetail> {
      auto it = health.find(t.url());
      if (it == health.end()) return std::nullopt;
      return it->second;
    };
  }
  // The stats id the compiler gave `node_ip` on VIP:port.
  uint32_t idOf(uint32_t vip, uint16_t port, uint32_t node_ip) {
    for (const VipView& v : model->view()->vips) {
      for (const PortView& p : v.ports) {
        for (const BackendView& b : p.backends) {
          if (v.vip == vip && p.port == port && b.address == node_ip) return b.stats_id;
        }
      }
    }
    ADD_FAILURE() << "no backend";
    return 0;
  }
};

const uint32_t kVip = conf::parseIpv4("10.100.0.100").value();
const uint32_t kN1 = conf::parseIpv4("10.200.0.11").value();
const uint32_t kN2 = conf::parseIpv4("10.200.0.12").value();

TEST(StatusApi, StatsSumOverWorkersAndNameEveryDropReason) {
  Box box;
  box.counters[0].rx_packets.add(10);
  box.counters[1].rx_packets.add(5);
  box.counters[0].new_flows.add(2);
  box.counters[1].drop(fwd::DropReason::kNoService);
  box.counters[1].drop(fwd::DropReason::kNoService);
  box.counters[0].active_flows.set(7);
  box.counters[0].half_open_flows.set(3);
  box.counters[0].flow_index_slots.set(4096);
  box.counters[1].flow_index_slots.set(8192);
  box.counters[1].half_open_evictions.add(4);
  const json j = statsJson(*box.model);
  EXPECT_EQ(j["generation"], 1);
  EXPECT_EQ(j["workers"], 2);
  EXPECT_EQ(j["counters"]["rx_packets"], 15);
  EXPECT_EQ(j["counters"]["new_flows"], 2);
  EXPECT_EQ(j["counters"]["active_flows"], 7);
  EXPECT_EQ(j["counters"]["half_open_flows"], 3);
  EXPECT_EQ(j["counters"]["flow_index_slots"], 4096 + 8192);
  EXPECT_EQ(j["counters"]["half_open_evictions"], 4);
  EXPECT_EQ(j["drops"]["no_service"], 2);
  EXPECT_EQ(j["drops"].size(), fwd::kDropReasonCount);
  for (const auto& [name, value] : j["drops"].items()) EXPECT_NE(name, "unknown");
}

TEST(StatusApi, VipsShowBackendCountersSummedOverWorkersAndPortTotals) {
  Box box;
  const uint32_t n1 = box.idOf(kVip, 80, kN1);
  const uint32_t n2 = box.idOf(kVip, 80, kN2);
  ASSERT_NE(n1, 0u);
  ASSERT_NE(n1, n2);
  box.stats[0].at(n1).packets_in.add(3);
  box.stats[1].at(n1).packets_in.add(4);
  box.stats[0].at(n1).bytes_in.add(700);
  box.stats[0].at(n1).new_flows.add(2);
  box.stats[1].at(n1).closed_flows.add(1);
  box.stats[0].at(n2).packets_out.add(9);
  const json j = vipsJson(box.sources);
  ASSERT_EQ(j["vips"].size(), 2u);
  const json& web = j["vips"][0];
  EXPECT_EQ(web["vip"], "10.100.0.100");
  EXPECT_EQ(web["owner"], "shop/web");
  EXPECT_EQ(web["mode"], "fullnat");
  EXPECT_EQ(web["ip_mode"], "Proxy");
  ASSERT_EQ(web["ports"].size(), 2u);
  const json& udp = web["ports"][0];  // sorted by port: 53 first
  EXPECT_EQ(udp["port"], 53);
  EXPECT_EQ(udp["protocol"], "UDP");
  const json& http = web["ports"][1];
  EXPECT_EQ(http["node_port"], 30080);
  EXPECT_EQ(http["backends"][0]["node"], "n1");
  EXPECT_EQ(http["backends"][0]["counters"]["packets_in"], 7);
  EXPECT_EQ(http["backends"][0]["counters"]["bytes_in"], 700);
  EXPECT_EQ(http["backends"][0]["counters"]["active_flows"], 1);
  EXPECT_EQ(http["backends"][1]["counters"]["packets_out"], 9);
  EXPECT_EQ(http["counters"]["packets_in"], 7);
  EXPECT_EQ(http["counters"]["packets_out"], 9);
  // The UDP port's backends have ids of their own: nothing counted there.
  EXPECT_EQ(udp["counters"]["packets_in"], 0);
  EXPECT_EQ(j["drops"].size(), fwd::kDropReasonCount);
}

TEST(StatusApi, HealthDetailShownPerBackendWithProbeUrl) {
  Box box;
  box.health["http://10.200.0.12:10256/healthz"] =
      HealthDetail{.state = "down", .reason = "refused", .detail = "connection refused", .since_unix_ms = 1'795'000'000'000};
  const json web = vipJson(box.sources, kVip).value();
  const json& n1 = web["ports"][1]["backends"][0]["health"];
  const json& n2 = web["ports"][1]["backends"][1]["health"];
  EXPECT_EQ(n1["state"], "unknown");  // no verdict in the map
  EXPECT_EQ(n1["probe"], "http://10.200.0.11:10256/healthz");
  EXPECT_EQ(n2["state"], "down");
  EXPECT_EQ(n2["reason"], "refused");
  EXPECT_EQ(n2["detail"], "connection refused");
  EXPECT_EQ(n2["since"], "2026-11-18T11:06:40Z");
  // Local Service: probed on its health check node port.
  const json api = vipJson(box.sources, conf::parseIpv4("10.100.0.101").value()).value();
  EXPECT_EQ(api["ports"][0]["backends"][0]["health"]["probe"], "http://10.200.0.11:32000/healthz");
  EXPECT_FALSE(vipJson(box.sources, conf::parseIpv4("10.100.0.199").value()).has_value());
}

TEST(StatusApi, NodesShowEachProbesHistory) {
  Box box;
  box.health["http://10.200.0.12:10256/healthz"] = HealthDetail{
      .state = "up", .transitions = 2, .probes = 40, .failures = 3,
      .history = {{.unix_ms = 1'795'000'000'000, .from = "up", .to = "down", .reason = "refused",
                   .detail = "connection refused"},
                  {.unix_ms = 1'795'000'004'000, .from = "down", .to = "up", .reason = "", .detail = "HTTP 200"}}};
  const json nodes = nodesJson(box.sources);
  const json& n2 = nodes["nodes"][1];
  EXPECT_EQ(n2["name"], "n2");
  ASSERT_EQ(n2["health"].size(), 2u) << "kube-proxy (Cluster) and the Local service's health port";
  const json& kp = n2["health"][0]["probe"] == "http://10.200.0.12:10256/healthz" ? n2["health"][0] : n2["health"][1];
  EXPECT_EQ(kp["probes"], 40);
  EXPECT_EQ(kp["failures"], 3);
  ASSERT_EQ(kp["history"].size(), 2u);
  EXPECT_EQ(kp["history"][0]["to"], "down");
  EXPECT_EQ(kp["history"][0]["reason"], "refused");
  EXPECT_EQ(kp["history"][1]["time"], "2026-11-18T11:06:44Z");
}

TEST(StatusApi, ReusedStatsIdStartsFromZeroForItsNewOwner) {
  Box box;
  // Give the compiler a tiny id space so that ids are reused at once.
  SnapshotCompiler small(1009, 4);  // ids 1..3
  auto cfg = twoServices();
  cfg.services.resize(1);
  cfg.services[0].ports.resize(1);  // shop/web:80 on n1, n2 -> ids 1, 2
  (void)small.compile(cfg, 1);
  box.model->publish(small.lastStatus());
  const uint32_t old_id = box.idOf(kVip, 80, kN2);
  box.stats[0].at(old_id).packets_in.add(50);
  EXPECT_EQ(box.model->backendTotals(old_id).packets_in, 50u);
  cfg.services[0].ports[0].port = 81;  // new keys: 3 fresh, then the released ones
  cfg.nodes.push_back({.name = "n3", .addresses = {conf::parseIpv4("10.200.0.13").value()}});
  (void)small.compile(cfg, 2);
  box.model->publish(small.lastStatus());
  for (const auto& b : box.model->view()->vips[0].ports[0].backends) {
    EXPECT_EQ(box.model->backendTotals(b.stats_id).packets_in, 0u) << b.node;
  }
}

TEST(StatusApi, RatesComeFromTwoSamples) {
  Box box;
  const uint32_t n1 = box.idOf(kVip, 80, kN1);
  const auto t0 = std::chrono::steady_clock::now();
  box.model->sample(t0);
  box.stats[0].at(n1).packets_in.add(100);
  box.stats[0].at(n1).new_flows.add(10);
  box.counters[0].busy_cycles.add(250'000'000);  // a quarter of 1e9 Hz x 1 s
  box.model->sample(t0 + std::chrono::seconds(2));
  EXPECT_DOUBLE_EQ(box.model->backendRates(n1).packets_in, 50.0);
  EXPECT_DOUBLE_EQ(box.model->backendRates(n1).new_flows, 5.0);
  EXPECT_DOUBLE_EQ(box.model->busyRatio(0), 0.125);
}

TEST(StatusApi, MetricsHaveTypesAndLabelsForEveryFamily) {
  Box box;
  box.stats[0].at(box.idOf(kVip, 80, kN1)).packets_in.add(42);
  box.health["http://10.200.0.11:10256/healthz"] = HealthDetail{.state = "up", .transitions = 3};
  const std::string text = metricsText(box.sources);
  EXPECT_NE(text.find("# TYPE nodegate_backend_packets_total counter"), std::string::npos);
  EXPECT_NE(text.find("nodegate_backend_packets_total{vip=\"10.100.0.100\",port=\"80\",protocol=\"TCP\","
                      "service=\"shop/web\",node=\"n1\",backend=\"10.200.0.11:30080\",direction=\"in\"} 42"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("nodegate_health_transitions_total{target=\"http://10.200.0.11:10256/healthz\"} 3"),
            std::string::npos);
  EXPECT_NE(text.find("nodegate_drops_total{reason=\"no_backend\"} 0"), std::string::npos);
  EXPECT_NE(text.find("nodegate_worker_busy_ratio{worker=\"1\"}"), std::string::npos);
  EXPECT_NE(text.find("# TYPE nodegate_flows_half_open gauge"), std::string::npos);
  EXPECT_NE(text.find("# TYPE nodegate_flow_index_slots gauge"), std::string::npos);
  EXPECT_NE(text.find("nodegate_flows_half_open_evictions_total{worker=\"0\"} 0"), std::string::npos);
  EXPECT_NE(text.find("nodegate_drops_total{reason=\"fragment_no_flow\"} 0"), std::string::npos);
}

TEST(StatusApi, StatusAndMetricsShowBothFlowTableCapacities) {
  Box box;
  const json j = statusJson(box.sources);
  ASSERT_EQ(j["workers"].size(), 2u);
  EXPECT_EQ(j["workers"][1]["flow_capacity"], 100);
  EXPECT_EQ(j["workers"][1]["flow6_capacity"], 1024);
  const std::string text = metricsText(box.sources);
  EXPECT_NE(text.find("nodegate_flows_capacity{worker=\"1\"} 100"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE nodegate_flows6_capacity gauge"), std::string::npos);
  EXPECT_NE(text.find("nodegate_flows6_capacity{worker=\"1\"} 1024"), std::string::npos);
}

TEST(StatusApi, BearerTokenComparison) {
  EXPECT_TRUE(bearerMatches("s3cret", "Bearer s3cret"));
  EXPECT_FALSE(bearerMatches("s3cret", "Bearer s3cre"));
  EXPECT_FALSE(bearerMatches("s3cret", "Bearer s3cret2"));
  EXPECT_FALSE(bearerMatches("s3cret", "bearer s3cret"));
  EXPECT_FALSE(bearerMatches("s3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("", "Bearer "));
}

// Sends `request` on a fresh connection and returns the response's status line and
// what followed in the first read ("" on error). Plain sockets: the test controls every
// byte (an oversize body is announced but never sent).
std::string rawExchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
      response.append(buf, static_cast<size_t>(n));
      if (response.find("\r\n\r\n") != std::string::npos && response.find('}') != std::string::npos) break;
    }
  }
  ::close(fd);
  return response;
}

int statusOf(const std::string& response) { return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0; }

std::string post(int port, const std::string& path, const std::string& auth, const std::string& body) {
  std::string request = "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (!auth.empty()) request += "Authorization: " + auth + "\r\n";
  request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return rawExchange(port, request);
}

// The server itself: auth on mutations, body limit, JSON errors, the page.
TEST(StatusApi, ServerEnforcesTokenAndBodyLimit) {
  Box box;
  int reloads = 0;
  box.sources.reload = [&reloads] {
    ++reloads;
    return ReloadResult{.ok = true, .message = "generation 2", .generation = 2};
  };
  StatusApi api(box.sources);
  api.setToken("tok");
  api.start(conf::ApiConfig{.listen = "127.0.0.1:0"});
  const int port = api.port();
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  auto res = client.Get("/healthz");
  for (int i = 0; i < 50 && !res; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    res = client.Get("/healthz");
  }
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  std::string r = post(port, "/v1/reload", "", "");
  EXPECT_EQ(statusOf(r), 401) << r;
  EXPECT_NE(r.find("Bearer"), std::string::npos);
  EXPECT_EQ(reloads, 0);
  r = post(port, "/v1/reload", "Bearer nope", "");
  EXPECT_EQ(statusOf(r), 401) << r;
  EXPECT_EQ(reloads, 0);
  r = post(port, "/v1/reload", "Bearer tok", "{}");
  EXPECT_EQ(statusOf(r), 200) << r;
  EXPECT_NE(r.find("\"generation\": 2"), std::string::npos) << r;
  EXPECT_EQ(reloads, 1);

  // An oversize body: refused with 413, not handed to the handler.
  r = post(port, "/v1/reload", "Bearer tok", std::string(100 * 1024, 'x'));
  EXPECT_EQ(statusOf(r), 413) << r;
  EXPECT_NE(r.find("larger than 65536 bytes"), std::string::npos) << r;
  EXPECT_EQ(reloads, 1);

  res = client.Get("/v1/vips/10.100.0.100");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["owner"], "shop/web");
  res = client.Get("/v1/vips/10.100.0.7");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Get("/v1/vips/nonsense");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  res = client.Get("/no/such/path");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  res = client.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("v1/vips"), std::string::npos);
  api.stop();
}

// TLS: the same API over HTTPS with a self-signed certificate (openssl CLI).
TEST(StatusApi, ServesHttpsWithTheConfiguredCertificate) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("ng-tls-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/cert.pem";
  const std::string key = dir + "/key.pem";
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                          "-subj /CN=nodegate-test -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  Box box;
  StatusApi api(box.sources);
  api.start(conf::ApiConfig{.listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key});
  httplib::SSLClient client("127.0.0.1", api.port());
  client.enable_server_certificate_verification(false);
  client.set_connection_timeout(5);
  auto res = client.Get("/v1/vips");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["vips"].size(), 2u);
  // Plain HTTP to the TLS port gets no API answer.
  httplib::Client plain("127.0.0.1", api.port());
  plain.set_connection_timeout(2);
  plain.set_read_timeout(2);
  auto clear = plain.Get("/v1/vips");
  EXPECT_FALSE(clear && clear->status == 200);
  api.stop();
  EXPECT_THROW(StatusApi(box.sources).start(conf::ApiConfig{.listen = "127.0.0.1:0", .tls_cert = key, .tls_key = cert}),
               std::runtime_error);
  std::filesystem::remove_all(dir);
}

// Slow clients (connections that never send a request) hold a pool thread each for at
// most the read timeout; the other threads keep answering.
TEST(StatusApi, IdleConnectionsDoNotStallOtherClients) {
  Box box;
  StatusApi api(box.sources);
  api.start(conf::ApiConfig{.listen = "127.0.0.1:0"});
  std::vector<int> idle;
  for (int i = 0; i < 10; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(api.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::send(fd, "GET /v1/vi", 10, MSG_NOSIGNAL);  // a request that never completes
    idle.push_back(fd);
  }
  httplib::Client client("127.0.0.1", api.port());
  client.set_connection_timeout(3);
  client.set_read_timeout(3);  // well under the server's 5 s read timeout
  auto res = client.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  for (int fd : idle) ::close(fd);
  api.stop();
}

}  // namespace
}  // namespace ng::control
