// The whole ngctl command line in-process (runNgctl) against FakeBox, an httplib::Server on
// 127.0.0.1 that answers canned responses and records every request it gets.
#include "control/ngctl/cli.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/control/ngctl/sample_vips.h"

namespace ng::ngctl {
namespace {

using nlohmann::json;

struct Recorded {
  std::string method;
  std::string path;
  std::string body;
  std::string authorization;  // "" when the header was absent
  std::string contentType;
};

class FakeBox {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  FakeBox() {
    const auto dispatch = [this](const httplib::Request& req, httplib::Response& res) {
      Handler handler;
      {
        std::lock_guard lock(mu_);
        requests_.push_back({req.method, req.path, req.body, req.get_header_value("Authorization"),
                             req.get_header_value("Content-Type")});
        if (auto it = routes_.find(req.method + " " + req.path); it != routes_.end()) handler = it->second;
      }
      if (handler) {
        handler(req, res);
      } else {
        res.status = 404;
        res.set_content(R"({"error":"no route in FakeBox"})", "application/json");
      }
    };
    server_.Get(".*", dispatch);
    server_.Put(".*", dispatch);
    server_.Delete(".*", dispatch);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the loop runs, so wait for it before any test can end.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeBox() {
    server_.stop();
    thread_.join();
  }

  void on(const std::string& method, const std::string& path, Handler h) {
    std::lock_guard lock(mu_);
    routes_[method + " " + path] = std::move(h);
  }
  void answer(const std::string& method, const std::string& path, int status, std::string body) {
    on(method, path, [status, body](const httplib::Request&, httplib::Response& res) {
      res.status = status;
      res.set_content(body, "application/json");
    });
  }
  [[nodiscard]] std::vector<Recorded> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, Handler> routes_;
  std::vector<Recorded> requests_;
};

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome ngctl(const std::vector<std::string>& args, const CliEnvironment& env = {}) {
  std::ostringstream out;
  std::ostringstream err;
  Outcome r;
  r.code = runNgctl(args, out, err, env);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string writeTemp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "ngctl_cli_test_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// A loopback port nothing listens on: bound once by us, then released.
int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

constexpr const char* kLoadBalancer =
    R"({"namespace": "shop", "name": "web", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]})";
constexpr const char* kPutAnswer =
    R"({"namespace":"shop","name":"web","ingress":[{"ip":"10.100.0.100","ipMode":"Proxy"}]})";

TEST(NgctlCli, ListPrintsTheVipTable) {
  FakeBox box;
  box.answer("GET", "/v1/vips", 200, test::kSampleVips);
  const Outcome r = ngctl({"--api", box.url(), "list"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("\nTCP  10.100.0.100:80     fullnat  default/web"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  -> 10.200.0.12:30080   1        down (refused)"), std::string::npos) << r.out;
  const auto reqs = box.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].path, "/v1/vips");
  EXPECT_EQ(reqs[0].authorization, "");  // no token configured, none sent
}

TEST(NgctlCli, ShowPrintsOneVipInDetail) {
  FakeBox box;
  box.answer("GET", "/v1/vips/10.100.0.100", 200, json::parse(test::kSampleVips)["vips"][0].dump());
  const Outcome r = ngctl({"--api", box.url(), "show", "10.100.0.100"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("    health:  down (refused: connection refused) since 2026-11-24T03:00:00Z\n"
                       "    probe:   http://10.200.0.12:10256/healthz\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  port total         120      9000"), std::string::npos) << r.out;
}

TEST(NgctlCli, ShowUnknownVipPrintsTheApiError) {
  FakeBox box;
  box.answer("GET", "/v1/vips/10.9.9.9", 404, R"({"error":"no VIP 10.9.9.9"})");
  const Outcome r = ngctl({"--api", box.url(), "show", "10.9.9.9"});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "ngctl: GET /v1/vips/10.9.9.9: HTTP 404 Not Found: no VIP 10.9.9.9\n");
}

TEST(NgctlCli, ShowRejectsSomethingThatIsNotAnAddress) {
  FakeBox box;
  const Outcome r = ngctl({"--api", box.url(), "show", "../stats"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("'../stats' is not an IPv4 or IPv6 address"), std::string::npos) << r.err;
  EXPECT_TRUE(box.requests().empty());
}

TEST(NgctlCli, ApplyPutsTheDocumentWithTheBearerToken) {
  FakeBox box;
  box.answer("PUT", "/v1/loadbalancers/shop/web", 200, kPutAnswer);
  const std::string file = writeTemp("web.json", kLoadBalancer);
  const std::string token = writeTemp("token", "  s3cret-token\n\n");
  const Outcome r = ngctl({"--api", box.url(), "--token-file", token, "apply", "-f", file});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "shop/web: ingress 10.100.0.100 (ipMode Proxy)\n");
  const auto reqs = box.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].path, "/v1/loadbalancers/shop/web");
  EXPECT_EQ(reqs[0].authorization, "Bearer s3cret-token");
  EXPECT_EQ(reqs[0].contentType, "application/json");
  EXPECT_EQ(json::parse(reqs[0].body), json::parse(kLoadBalancer));
}

TEST(NgctlCli, ApplyReadsStandardInput) {
  FakeBox box;
  box.answer("PUT", "/v1/loadbalancers/shop/web", 200, kPutAnswer);
  std::istringstream in(kLoadBalancer);
  const Outcome r = ngctl({"--api", box.url(), "apply", "-f", "-"}, CliEnvironment{.in = &in});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(box.requests().size(), 1u);
  EXPECT_EQ(json::parse(box.requests()[0].body), json::parse(kLoadBalancer));
}

TEST(NgctlCli, ApplyWithBadJsonNamesTheFileAndTheError) {
  FakeBox box;
  const std::string file = writeTemp("broken.json", "{\"namespace\": \"shop\",\n  \"name\": web}\n");
  const Outcome r = ngctl({"--api", box.url(), "apply", "-f", file});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(r.err.starts_with("ngctl: " + file + ": invalid JSON: parse error at line 2, column 11")) << r.err;
  EXPECT_EQ(r.err.find("[json.exception"), std::string::npos) << r.err;
  EXPECT_TRUE(box.requests().empty());
}

TEST(NgctlCli, ApplyNeedsStringNamespaceAndName) {
  FakeBox box;
  const std::string noName = writeTemp("noname.json", R"({"namespace": "shop", "ports": []})");
  Outcome r = ngctl({"--api", box.url(), "apply", "-f", noName});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "ngctl: " + noName + ": missing string field \"name\"\n");
  const std::string numeric = writeTemp("numeric.json", R"({"namespace": 7, "name": "web"})");
  r = ngctl({"--api", box.url(), "apply", "-f", numeric});
  EXPECT_EQ(r.err, "ngctl: " + numeric + ": missing string field \"namespace\"\n");
  const std::string slash = writeTemp("slash.json", R"({"namespace": "shop", "name": "web/../x"})");
  r = ngctl({"--api", box.url(), "apply", "-f", slash});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("is not a Kubernetes name"), std::string::npos) << r.err;
  r = ngctl({"--api", box.url(), "apply", "-f", "/nonexistent/lb.json"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "ngctl: cannot read /nonexistent/lb.json: No such file or directory\n");
  EXPECT_TRUE(box.requests().empty());
}

TEST(NgctlCli, UnauthorizedHintsAtTheTokenFile) {
  FakeBox box;
  box.answer("PUT", "/v1/loadbalancers/shop/web", 401, R"({"error":"missing bearer token"})");
  const std::string file = writeTemp("web401.json", kLoadBalancer);
  Outcome r = ngctl({"--api", box.url(), "apply", "-f", file});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_EQ(r.err,
            "ngctl: PUT /v1/loadbalancers/shop/web: HTTP 401 Unauthorized: missing bearer token\n"
            "ngctl: hint: the box requires a bearer token; pass --token-file FILE or set NGCTL_TOKEN_FILE\n");
  const std::string token = writeTemp("wrong-token", "nope\n");
  r = ngctl({"--api", box.url(), "--token-file", token, "apply", "-f", file});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_NE(r.err.find("hint: the box rejected the token from " + token), std::string::npos) << r.err;
}

TEST(NgctlCli, PayloadTooLargeSaysRequestTooLarge) {
  FakeBox box;
  box.answer("PUT", "/v1/loadbalancers/shop/web", 413, R"({"error":"body exceeds 65536 bytes"})");
  const std::string file = writeTemp("web413.json", kLoadBalancer);
  const Outcome r = ngctl({"--api", box.url(), "apply", "-f", file});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_NE(r.err.find("HTTP 413 Payload Too Large: body exceeds 65536 bytes\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("request too large"), std::string::npos) << r.err;
}

TEST(NgctlCli, BadRequestShowsTheApiErrorText) {
  FakeBox box;
  box.answer("PUT", "/v1/loadbalancers/shop/web", 400, R"({"error":"ports[0].port: 70000 is outside 1..65535"})");
  const std::string file = writeTemp("web400.json", kLoadBalancer);
  const Outcome r = ngctl({"--api", box.url(), "apply", "-f", file});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_EQ(r.err,
            "ngctl: PUT /v1/loadbalancers/shop/web: HTTP 400 Bad Request: ports[0].port: 70000 is outside "
            "1..65535\n");
}

TEST(NgctlCli, ErrorWithoutJsonBodyShowsItsFirstLine) {
  FakeBox box;
  box.on("GET", "/v1/vips", [](const httplib::Request&, httplib::Response& res) {
    res.status = 502;
    res.set_content("upstream went away\n<html>...</html>", "text/plain");
  });
  const Outcome r = ngctl({"--api", box.url(), "list"});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_EQ(r.err, "ngctl: GET /v1/vips: HTTP 502 Bad Gateway: upstream went away\n");
}

TEST(NgctlCli, SuccessWithoutJsonIsAnError) {
  FakeBox box;
  box.on("GET", "/v1/vips", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>hello</html>", "text/html");
  });
  const Outcome r = ngctl({"--api", box.url(), "list"});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_TRUE(r.err.starts_with("ngctl: GET /v1/vips: the response is not JSON: ")) << r.err;
}

TEST(NgctlCli, DeleteSendsDeleteWithTheToken) {
  FakeBox box;
  box.answer("DELETE", "/v1/loadbalancers/shop/web", 200, R"({"namespace":"shop","name":"web"})");
  const std::string token = writeTemp("token-del", "abc\n");
  const Outcome r = ngctl({"--api", box.url(), "--token-file", token, "delete", "shop/web"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "shop/web: deleted\n");
  const auto reqs = box.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "DELETE");
  EXPECT_EQ(reqs[0].path, "/v1/loadbalancers/shop/web");
  EXPECT_EQ(reqs[0].authorization, "Bearer abc");
}

TEST(NgctlCli, DeleteNeedsNamespaceSlashName) {
  FakeBox box;
  for (const char* bad : {"web", "shop/", "/web", "shop/web/x", "Shop/web"}) {
    const Outcome r = ngctl({"--api", box.url(), "delete", bad});
    EXPECT_EQ(r.code, kExitUsage) << bad;
    EXPECT_NE(r.err.find("expected NAMESPACE/NAME"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(box.requests().empty());
}

TEST(NgctlCli, DeleteOfUnknownPrintsTheApiError) {
  FakeBox box;
  box.answer("DELETE", "/v1/loadbalancers/shop/gone", 404, R"({"error":"no load balancer shop/gone"})");
  const Outcome r = ngctl({"--api", box.url(), "delete", "shop/gone"});
  EXPECT_EQ(r.code, kExitApiError);
  EXPECT_EQ(r.err, "ngctl: DELETE /v1/loadbalancers/shop/gone: HTTP 404 Not Found: no load balancer shop/gone\n");
}

TEST(NgctlCli, UnreachableBoxSaysConnectionRefusedAndExitsTwo) {
  const std::string api = "http://127.0.0.1:" + std::to_string(closedPort());
  const Outcome r = ngctl({"--api", api, "list"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "ngctl: cannot reach NodeGate at " + api + ": connection refused\n");
}

TEST(NgctlCli, SilentBoxTimesOut) {
  FakeBox box;
  box.on("GET", "/v1/stats", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    res.set_content("{}", "application/json");
  });
  const auto started = std::chrono::steady_clock::now();
  const Outcome r = ngctl({"--api", box.url(), "--timeout", "0.3", "stats"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1100));
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_EQ(r.err, "ngctl: cannot reach NodeGate at " + box.url() +
                       ": no response within 0.3 s (raise --timeout?)\n");
}

TEST(NgctlCli, EnvironmentGivesApiAndTokenFile) {
  FakeBox box;
  box.answer("DELETE", "/v1/loadbalancers/shop/web", 204, "");
  const std::string token = writeTemp("token-env", "from-env");
  const Outcome r = ngctl({"delete", "shop/web"}, CliEnvironment{.api = box.url(), .tokenFile = token});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(box.requests().size(), 1u);
  EXPECT_EQ(box.requests()[0].authorization, "Bearer from-env");
}

TEST(NgctlCli, StatsPrintsCountersAndNonZeroDrops) {
  FakeBox box;
  box.answer("GET", "/v1/stats", 200,
             R"({"generation":4,"workers":1,"counters":{"rx_packets":38007,"active_flows":13},
                 "drops":{"vlan":0,"no_service":3}})");
  const Outcome r = ngctl({"--api", box.url(), "stats"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Generation 4, workers 1\nCounter       Value\nactive_flows     13\nrx_packets    38007\n\n"
            "Drop        Count\nno_service      3\n");
}

TEST(NgctlCli, StatsWatchRepeatsWithRatesForCountSamples) {
  FakeBox box;
  std::atomic<int> served{0};
  box.on("GET", "/v1/stats", [&served](const httplib::Request&, httplib::Response& res) {
    const int n = ++served;
    res.set_content(json{{"generation", 4},
                         {"workers", 1},
                         {"counters", {{"rx_packets", 1000 * n}, {"active_flows", 5}}},
                         {"drops", {{"no_service", n}}}}
                        .dump(),
                    "application/json");
  });
  std::vector<bool> watching;
  const Outcome r = ngctl({"--api", box.url(), "stats", "--watch", "--interval", "0.05", "--count", "3"},
                      CliEnvironment{.watching = [&](bool on) { watching.push_back(on); }});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(served.load(), 3);
  size_t samples = 0;
  size_t withRates = 0;
  for (size_t at = 0; (at = r.out.find("--- ", at)) != std::string::npos; ++at) ++samples;
  for (size_t at = 0; (at = r.out.find("Counter       Value  Per-second\n", at)) != std::string::npos; ++at) {
    ++withRates;
  }
  EXPECT_EQ(samples, 3u) << r.out;
  EXPECT_EQ(withRates, 2u) << r.out;  // the first sample has nothing to compare with
  EXPECT_NE(r.out.find("rx_packets     3000"), std::string::npos) << r.out;
  EXPECT_EQ(watching, (std::vector<bool>{true, false}));
}

TEST(NgctlCli, StatsWatchEndsWhenStopped) {
  FakeBox box;
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  box.on("GET", "/v1/stats", [&](const httplib::Request&, httplib::Response& res) {
    if (++served == 2) stop = true;  // as if Ctrl-C came during the second sample
    res.set_content(R"({"generation":1,"workers":1,"counters":{"rx_packets":1},"drops":{}})", "application/json");
  });
  const Outcome r = ngctl({"--api", box.url(), "stats", "--watch", "--interval", "0.05"}, CliEnvironment{.stop = &stop});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(served.load(), 2);
}

TEST(NgctlCli, UsageErrorsExitThreeAndHelpDocumentsExitCodes) {
  Outcome r = ngctl({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2  NodeGate unreachable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("http://127.0.0.1:9080"), std::string::npos) << r.out;  // the default --api
  EXPECT_EQ(ngctl({}).code, kExitUsage);
  EXPECT_EQ(ngctl({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(ngctl({"show"}).code, kExitUsage);
  EXPECT_EQ(ngctl({"stats", "--count", "2"}).code, kExitUsage);  // --count needs --watch
  EXPECT_EQ(ngctl({"--timeout", "0", "list"}).code, kExitUsage);
  r = ngctl({"--api", "127.0.0.1:9080", "list"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("expected http://HOST[:PORT][/PATH]"), std::string::npos) << r.err;
  r = ngctl({"--api", "http://127.0.0.1:9", "--token-file", "/nonexistent/token", "list"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "ngctl: cannot read token file /nonexistent/token: No such file or directory\n");
  const std::string empty = writeTemp("empty-token", " \n");
  r = ngctl({"--api", "http://127.0.0.1:9", "--token-file", empty, "list"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "ngctl: token file " + empty + " is empty\n");
}

TEST(NgctlCli, ApiUrlWithBasePathPrefixesEveryRequest) {
  FakeBox box;
  box.answer("GET", "/nodegate/v1/vips", 200, test::kSampleVips);
  const Outcome r = ngctl({"--api", box.url() + "/nodegate/", "list"});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(box.requests().size(), 1u);
  EXPECT_EQ(box.requests()[0].path, "/nodegate/v1/vips");
}

}  // namespace
}  // namespace ng::ngctl

namespace ng::ngctl {
namespace {

// A box serving its API over HTTPS with a self-signed certificate for 127.0.0.1 (openssl
// CLI): ngctl refuses it by default, accepts it with --ca-file or --insecure.
TEST(NgctlCli, HttpsNeedsTheCaFileOrInsecure) {
  const std::string dir = ::testing::TempDir() + "ngctl_tls_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/cert.pem";
  const std::string key = dir + "/key.pem";
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                          "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " +
                          cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  httplib::SSLServer server(cert.c_str(), key.c_str());
  ASSERT_TRUE(server.is_valid());
  server.Get("/v1/stats", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"generation": 3, "workers": 1, "counters": {"rx_packets": 5}, "drops": {}})", "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&server] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string url = "https://127.0.0.1:" + std::to_string(port);

  const Outcome strict = ngctl({"--api", url, "stats"});
  EXPECT_EQ(strict.code, 2) << strict.out << strict.err;
  const Outcome with_ca = ngctl({"--api", url, "--ca-file", cert, "stats"});
  EXPECT_EQ(with_ca.code, 0) << with_ca.err;
  EXPECT_NE(with_ca.out.find("rx_packets"), std::string::npos) << with_ca.out;
  const Outcome insecure = ngctl({"--api", url, "--insecure", "stats"});
  EXPECT_EQ(insecure.code, 0) << insecure.err;

  server.stop();
  thread.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ng::ngctl
