// The real AsioProber against responders on 127.0.0.1 started by the tests: HTTP(S)
// verdicts, timeouts, refusals, and the engine end to end over real sockets.
#include "health/asio_prober.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <asio.hpp>
#include <atomic>
#include <thread>

#include "health/health_engine.h"
#include "test/health/test_responder.h"

namespace ng::health {
namespace {

using namespace std::chrono_literals;
using testing::TestResponder;

// Runs one probe on a private loop and returns its outcome (or fails the test).
ProbeOutcome probeOnce(const ProbeSpec& spec, std::chrono::milliseconds timeout = 2000ms,
                       AsioProber::Options options = {}) {
  asio::io_context io;
  AsioProber prober(io, std::move(options));
  std::optional<ProbeOutcome> out;
  int calls = 0;
  prober.probe(spec, timeout, [&](ProbeOutcome o) {
    ++calls;
    out = std::move(o);
  });
  EXPECT_FALSE(out.has_value()) << "done must not run inside probe()";
  while (!out && io.run_one_for(timeout + 5s) != 0) {
  }
  // A kept-alive connection would keep the loop busy: let it go, then run the loop dry
  // so that a second call of `done` would show.
  prober.forget(spec);
  io.run_for(timeout + 5s);
  EXPECT_EQ(calls, 1);
  return out.value_or(ProbeOutcome::fail(FailReason::kError, "no result"));
}

ProbeSpec http(uint16_t port, std::string path = "/healthz") {
  return {.kind = ProbeKind::kHttp, .address = "127.0.0.1", .port = port, .path = std::move(path)};
}

// A real HTTP server (cpp-httplib) for the well-formed answers.
class HttplibResponder {
 public:
  HttplibResponder() {
    server_.Get("/weight", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Load-Balancing-Endpoint-Weight", "3");
      res.set_content(R"({"service":{"namespace":"shop","name":"web"},"localEndpoints":2})",
                      "application/json");
    });
    server_.Get("/json", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"service":{"namespace":"shop","name":"web"},"localEndpoints":4,"serviceProxyHealthy":true})",
                      "application/json");
    });
    server_.Get("/drain", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content(R"({"localEndpoints":0})", "application/json");
    });
    server_.Get("/error", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // bind_to_any_port() already listens: early connects wait in the backlog.
  }
  ~HttplibResponder() {
    server_.stop();
    thread_.join();
  }
  [[nodiscard]] uint16_t port() const { return static_cast<uint16_t>(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class AsioProberHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new HttplibResponder(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static HttplibResponder* server_;
};
HttplibResponder* AsioProberHttp::server_ = nullptr;

TEST_F(AsioProberHttp, OkWithTheWeightHeader) {
  const auto o = probeOnce(http(server_->port(), "/weight"));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(o.http_status, 200);
  EXPECT_EQ(o.weight, 3u);
  EXPECT_EQ(o.detail, "HTTP 200 weight 3");
}

TEST_F(AsioProberHttp, OkWithLocalEndpointsFromTheJsonBody) {
  const auto o = probeOnce(http(server_->port(), "/json"));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(o.weight, 4u);
}

TEST_F(AsioProberHttp, ServiceUnavailableDrains) {
  const auto o = probeOnce(http(server_->port(), "/drain"));
  EXPECT_EQ(o.result, ProbeOutcome::kDrain) << o.detail;
  EXPECT_EQ(o.reason, FailReason::kHttpStatus);
  EXPECT_EQ(o.http_status, 503);
  EXPECT_EQ(o.detail, "HTTP 503");
}

TEST_F(AsioProberHttp, OtherStatusesFail) {
  auto o = probeOnce(http(server_->port(), "/error"));
  EXPECT_EQ(o.result, ProbeOutcome::kFail);
  EXPECT_EQ(o.reason, FailReason::kHttpStatus);
  EXPECT_EQ(o.detail, "HTTP 500");
  o = probeOnce(http(server_->port(), "/missing"));
  EXPECT_EQ(o.reason, FailReason::kHttpStatus);
  EXPECT_EQ(o.http_status, 404);
}

TEST(AsioProber, SendsAClosingHttp11GetWithTheHostHeader) {
  TestResponder r;
  const auto o = probeOnce(http(r.port(), "/x/y"), 2000ms, {.reuse_connections = false});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.lastRequest(), "GET /x/y HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(r.port()) +
                                 "\r\nUser-Agent: nodegate-health/1\r\nAccept: */*\r\n"
                                 "Connection: close\r\n\r\n");
}

TEST(AsioProber, GarbageIsABadResponse) {
  TestResponder r;
  r.respond("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
  const auto o = probeOnce(http(r.port()));
  EXPECT_EQ(o.result, ProbeOutcome::kFail);
  EXPECT_EQ(o.reason, FailReason::kBadResponse) << o.detail;
}

TEST(AsioProber, AnOversizeResponseIsABadResponse) {
  TestResponder r;
  r.respond(TestResponder::http(200, "", std::string(64 * 1024, 'x')));
  auto o = probeOnce(http(r.port()));
  EXPECT_EQ(o.reason, FailReason::kBadResponse) << o.detail;
  EXPECT_EQ(o.detail, "bad response: larger than 16384 bytes");
  // The limit is an option; the same answer fits a larger one.
  o = probeOnce(http(r.port()), 2000ms, {.max_response_bytes = 128 * 1024});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
}

TEST(AsioProber, AServerThatNeverAnswersTimesOut) {
  TestResponder r;
  r.beSilent();
  const auto start = std::chrono::steady_clock::now();
  const auto o = probeOnce(http(r.port()), 300ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(o.result, ProbeOutcome::kFail);
  EXPECT_EQ(o.reason, FailReason::kTimeout);
  EXPECT_EQ(o.detail, "timeout after 300 ms (waiting for response)");
  EXPECT_EQ(r.accepted(), 1);
}

TEST(AsioProber, AClosedPortIsRefused) {
  uint16_t port;
  {
    TestResponder r;
    port = r.port();
  }
  for (auto kind : {ProbeKind::kHttp, ProbeKind::kTcp, ProbeKind::kHttps}) {
    const auto o = probeOnce({.kind = kind, .address = "127.0.0.1", .port = port});
    EXPECT_EQ(o.result, ProbeOutcome::kFail);
    EXPECT_EQ(o.reason, FailReason::kRefused) << o.detail;
    EXPECT_EQ(o.detail, "connection refused");
  }
}

TEST(AsioProber, TcpKindOnlyConnects) {
  TestResponder r;
  r.beSilent();
  const auto o = probeOnce({.kind = ProbeKind::kTcp, .address = "127.0.0.1", .port = r.port()});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(o.detail, "connected");
  EXPECT_FALSE(o.weight);
}

TEST(AsioProber, HttpsWithoutVerificationAcceptsASelfSignedCertificate) {
  TestResponder r("127.0.0.1", /*tls=*/true);
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 2\r\n", "{}"));
  const auto o = probeOnce({.kind = ProbeKind::kHttps, .address = "127.0.0.1", .port = r.port()});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(o.weight, 2u);
  EXPECT_TRUE(r.lastRequest().starts_with("GET /healthz HTTP/1.1\r\n"));
}

TEST(AsioProber, HttpsWithVerificationRejectsASelfSignedCertificate) {
  TestResponder r("127.0.0.1", /*tls=*/true);
  const auto o = probeOnce(
      {.kind = ProbeKind::kHttps, .address = "127.0.0.1", .port = r.port(), .tls_verify = true});
  EXPECT_EQ(o.result, ProbeOutcome::kFail);
  EXPECT_EQ(o.reason, FailReason::kTls) << o.detail;
  EXPECT_TRUE(o.detail.starts_with("TLS: ")) << o.detail;
}

TEST_F(AsioProberHttp, HttpsAgainstAPlainHttpServerIsATlsFailure) {
  // The server answers the ClientHello with an HTTP 400: not a TLS record.
  const auto o =
      probeOnce({.kind = ProbeKind::kHttps, .address = "127.0.0.1", .port = server_->port()});
  EXPECT_EQ(o.reason, FailReason::kTls) << o.detail;
}

TEST(AsioProber, ProbesLeaveFromTheSourceAddress) {
  TestResponder r;
  auto o = probeOnce(http(r.port()), 2000ms, {.source_address = "127.0.0.2"});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.lastPeer(), "127.0.0.2");
  // An IPv6 source is not applied to an IPv4 target.
  o = probeOnce(http(r.port()), 2000ms, {.source_address = "::1"});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.lastPeer(), "127.0.0.1");
}

TEST(AsioProber, Ipv6Loopback) {
  std::unique_ptr<TestResponder> r;
  try {
    r = std::make_unique<TestResponder>("::1");
  } catch (const std::system_error&) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  const auto o = probeOnce({.kind = ProbeKind::kHttp, .address = "::1", .port = r->port()});
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_NE(r->lastRequest().find("Host: [::1]:" + std::to_string(r->port())), std::string::npos);
}

TEST(AsioProber, AnInvalidAddressIsAnError) {
  const auto o = probeOnce({.kind = ProbeKind::kHttp, .address = "node-1.example", .port = 80});
  EXPECT_EQ(o.reason, FailReason::kError);
  EXPECT_EQ(o.detail, "invalid address 'node-1.example'");
}

TEST(AsioProber, ManyProbesInFlightOnOneLoop) {
  TestResponder r;
  asio::io_context io;
  AsioProber prober(io, {});
  int ok = 0;
  int done = 0;
  for (int i = 0; i < 200; ++i) {
    prober.probe(http(r.port()), 5000ms, [&](ProbeOutcome o) {
      ++done;
      ok += o.result == ProbeOutcome::kOk;
    });
  }
  io.run_for(20s);
  EXPECT_EQ(done, 200);
  EXPECT_EQ(ok, 200);
}

// ---- keep-alive: one connection per target across probes ----------------------------

// One prober on one loop across several probes, the way the engine uses it.
class ProbeLoop {
 public:
  explicit ProbeLoop(AsioProber::Options options = {}) : prober_(io_, std::move(options)) {}

  ProbeOutcome probe(const ProbeSpec& spec, std::chrono::milliseconds timeout = 2000ms) {
    std::optional<ProbeOutcome> out;
    prober_.probe(spec, timeout, [&](ProbeOutcome o) { out = std::move(o); });
    EXPECT_FALSE(out.has_value()) << "done must not run inside probe()";
    io_.restart();
    // Kept connections keep the loop busy forever: run until this probe is done.
    while (!out && io_.run_one_for(timeout + 5s) != 0) {
    }
    return out.value_or(ProbeOutcome::fail(FailReason::kError, "no result"));
  }
  // Lets the loop handle whatever arrives meanwhile (a server closing an idle connection).
  void runFor(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }
  AsioProber& prober() { return prober_; }

 private:
  asio::io_context io_;  // destroyed after the prober, closing the kept connections
  AsioProber prober_;
};

TEST(AsioProberKeepAlive, SendsAKeepAliveGetAndReusesOneConnection) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 2\r\n", "{}", /*close=*/false));
  ProbeLoop loop;
  for (int i = 0; i < 5; ++i) {
    const auto o = loop.probe(http(r.port(), "/x"));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
    EXPECT_EQ(o.weight, 2u);
  }
  EXPECT_EQ(r.accepted(), 1);
  EXPECT_EQ(r.requests(), 5);
  EXPECT_EQ(r.lastRequest(), "GET /x HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(r.port()) +
                                 "\r\nUser-Agent: nodegate-health/1\r\nAccept: */*\r\n"
                                 "Connection: keep-alive\r\n\r\n");
}

TEST(AsioProberKeepAlive, EveryStatusKeepsTheConnectionAndTheBodyIsConsumed) {
  // A 503 is judged from its head alone; the body must still be read off the
  // connection, or the next probe would take it for the start of its answer.
  TestResponder r;
  r.keepAlive(true);
  ProbeLoop loop;
  r.respond(TestResponder::http(503, "", R"({"localEndpoints":0})", false));
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kDrain);
  r.respond(TestResponder::http(500, "", "oops", false));
  EXPECT_EQ(loop.probe(http(r.port())).detail, "HTTP 500");
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 5\r\n", std::string(3000, 'x'), false));
  EXPECT_EQ(loop.probe(http(r.port())).weight, 5u);
  r.respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "14\r\n{\"localEndpoints\":7}\r\n0\r\n\r\n");
  EXPECT_EQ(loop.probe(http(r.port())).weight, 7u);
  r.respond(TestResponder::http(200, "", "ok", false));
  const auto o = loop.probe(http(r.port()));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.accepted(), 1);
  EXPECT_EQ(r.requests(), 5);
}

TEST(AsioProberKeepAlive, ConnectionCloseFromTheServerMeansANewConnectionPerProbe) {
  TestResponder r;  // answers "Connection: close", then closes
  ProbeLoop loop;
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  }
  EXPECT_EQ(r.accepted(), 3);
  EXPECT_EQ(r.openConnections(), 0);
}

TEST(AsioProberKeepAlive, AResponseWithoutLengthIsReadToTheEndThenTheNextProbeReconnects) {
  TestResponder r;  // closes after answering, here without saying so in a header
  r.respond("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"localEndpoints\":3}");
  ProbeLoop loop;
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
    EXPECT_EQ(o.weight, 3u);
  }
  EXPECT_EQ(r.accepted(), 3);
}

TEST(AsioProberKeepAlive, BytesAfterTheResponseAreNotKeptForTheNextProbe) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false) + "HTTP/1.1 200 OK\r\n");
  ProbeLoop loop;
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  EXPECT_EQ(r.accepted(), 2);
}

TEST(AsioProberKeepAlive, AStaleConnectionIsRetriedOnceOnAFreshOne) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  r.resetReusedConnections(true);  // every kept connection dies as our next request arrives
  ProbeLoop loop;
  for (int i = 0; i < 4; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << i << ": " << o.detail;
  }
  // Probes 2-4 each found their connection reset, then succeeded on a new one.
  EXPECT_EQ(r.accepted(), 4);
  EXPECT_EQ(r.requests(), 7);
}

TEST(AsioProberKeepAlive, AConnectionTheServerClosedWhileIdleIsNotAFailure) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  ProbeLoop loop;
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  // Closed while the loop is not running: the next probe meets the dead socket itself.
  r.closeConnections();
  auto o = loop.probe(http(r.port()));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  // Closed while the loop runs: the idle connection is dropped before the next probe.
  r.closeConnections();
  loop.runFor(100ms);
  o = loop.probe(http(r.port()));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.accepted(), 3);
}

TEST(AsioProberKeepAlive, AServerThatDiesIsRefusedAndWhenItComesBackItIsUp) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  ProbeLoop loop;
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  r.closeListener();
  r.closeConnections();
  for (int i = 0; i < 2; ++i) {  // the stale connection's retry, then a plain connect
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kFail);
    EXPECT_EQ(o.reason, FailReason::kRefused) << o.detail;
    EXPECT_EQ(o.detail, "connection refused");
  }
  r.reopenListener();
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  }
  EXPECT_EQ(r.accepted(), 2);
}

TEST(AsioProberKeepAlive, ALateAnswerIsWaitedForAndTheConnectionIsStillKept) {
  // The answer comes long after the batch read (Shared::kCollectDelay): the probe waits
  // for the socket, which a kept plain connection is otherwise out of the loop for.
  TestResponder r;
  r.keepAlive(true);
  r.delayAnswers(60ms);
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 4\r\n", "{}", false));
  ProbeLoop loop;
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
    EXPECT_EQ(o.weight, 4u);
  }
  r.delayAnswers(0ms);  // and back to answers there at the first look
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  EXPECT_EQ(r.accepted(), 1);
  EXPECT_EQ(r.requests(), 4);
}

TEST(AsioProberKeepAlive, AnAnswerInPiecesIsPutTogetherAndTheConnectionKept) {
  // The first read finds only the start of the head; the rest arrives 30 ms later.
  TestResponder r;
  r.keepAlive(true);
  r.splitAnswers(30ms);
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 6\r\n", "{}", false));
  ProbeLoop loop;
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(http(r.port()));
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
    EXPECT_EQ(o.weight, 6u);
  }
  r.respond(TestResponder::http(503, "", R"({"localEndpoints":0})", false));
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kDrain);
  r.splitAnswers(0ms);
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kDrain);
  EXPECT_EQ(r.accepted(), 1);
  EXPECT_EQ(r.requests(), 5);
}

TEST(AsioProberKeepAlive, ATimeoutOnAKeptConnectionFailsClosesItAndIsNotRetried) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  ProbeLoop loop;
  EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  r.beSilent();  // the node hangs: it takes the request and never answers
  auto o = loop.probe(http(r.port()), 300ms);
  EXPECT_EQ(o.result, ProbeOutcome::kFail);
  EXPECT_EQ(o.reason, FailReason::kTimeout);
  EXPECT_EQ(o.detail, "timeout after 300 ms (waiting for response)");
  EXPECT_EQ(r.accepted(), 1);  // no second attempt
  r.respond(TestResponder::http(200, "", "ok", false));
  o = loop.probe(http(r.port()));
  EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
  EXPECT_EQ(r.accepted(), 2);  // the timed-out connection was not used again
}

TEST(AsioProberKeepAlive, HttpsReusesTheConnectionAndItsTlsSession) {
  TestResponder r("127.0.0.1", /*tls=*/true);
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "X-Load-Balancing-Endpoint-Weight: 4\r\n", "{}", false));
  ProbeLoop loop;
  const ProbeSpec spec{.kind = ProbeKind::kHttps, .address = "127.0.0.1", .port = r.port()};
  for (int i = 0; i < 3; ++i) {
    const auto o = loop.probe(spec);
    EXPECT_EQ(o.result, ProbeOutcome::kOk) << o.detail;
    EXPECT_EQ(o.weight, 4u);
  }
  EXPECT_EQ(r.accepted(), 1);
  EXPECT_EQ(r.requests(), 3);
}

TEST(AsioProberKeepAlive, TcpProbesConnectEveryTime) {
  TestResponder r;
  r.keepAlive(true);
  ProbeLoop loop;
  const ProbeSpec spec{.kind = ProbeKind::kTcp, .address = "127.0.0.1", .port = r.port()};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(loop.probe(spec).result, ProbeOutcome::kOk);
  // The handshake completes in the kernel before the responder's accept() counts it.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (r.accepted() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(r.accepted(), 3);
}

TEST(AsioProberKeepAlive, WithReuseOffEveryProbeIsItsOwnClosingConnection) {
  TestResponder r;
  r.keepAlive(true);  // the server would keep it; the prober asks it not to
  r.respond(TestResponder::http(200, "", "ok", false));
  ProbeLoop loop({.reuse_connections = false});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(loop.probe(http(r.port())).result, ProbeOutcome::kOk);
  EXPECT_EQ(r.accepted(), 3);
  EXPECT_NE(r.lastRequest().find("Connection: close\r\n"), std::string::npos);
}

TEST(AsioProberKeepAlive, ForgetClosesTheKeptConnection) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  ProbeLoop loop;
  const ProbeSpec spec = http(r.port());
  EXPECT_EQ(loop.probe(spec).result, ProbeOutcome::kOk);
  EXPECT_EQ(loop.probe(spec).result, ProbeOutcome::kOk);
  EXPECT_EQ(r.accepted(), 1);
  loop.prober().forget(spec);
  EXPECT_EQ(loop.probe(spec).result, ProbeOutcome::kOk);
  EXPECT_EQ(r.accepted(), 2);
}

// The engine over real sockets: a node that answers 200, then 503, then goes away, then
// comes back. Every state change shows in the status and its history, once each.
TEST(HealthEngineEndToEnd, FollowsANodeThroughDrainDownAndBackUp) {
  TestResponder r;
  r.respond(TestResponder::http(200, "", "ok"));
  std::atomic<int> changes{0};
  HealthEngine engine(HealthEngine::Options{}, [&] { changes.fetch_add(1); });
  const ProbeSpec probe = http(r.port());
  engine.setTargets({{probe, {.interval_ms = 40, .timeout_ms = 1000, .rise = 2, .fall = 2}}});
  engine.start();

  auto state = [&] { return engine.status(probe).value().state; };
  auto eventually = [](auto pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return pred();
  };
  ASSERT_TRUE(eventually([&] { return engine.status(probe)->probes >= 2; }));
  EXPECT_EQ(state(), HealthState::kUp);
  EXPECT_EQ(engine.status(probe)->failures, 0u);

  r.respond(TestResponder::http(503, "", R"({"localEndpoints":0})"));
  ASSERT_TRUE(eventually([&] { return state() == HealthState::kDraining; }));
  EXPECT_FALSE(engine.status(probe)->serving);

  r.closeListener();
  ASSERT_TRUE(eventually([&] { return state() == HealthState::kDown; }));
  EXPECT_EQ(engine.status(probe)->last_reason, FailReason::kRefused);
  EXPECT_EQ(engine.status(probe)->last_detail, "connection refused");

  r.respond(TestResponder::http(200, "", "ok"));
  r.reopenListener();
  ASSERT_TRUE(eventually([&] { return state() == HealthState::kUp; }));
  // The change callback is posted to the engine's loop after the state changes: wait for
  // it before stopping the loop (under load it may still be queued).
  EXPECT_TRUE(eventually([&] { return changes.load() == 2; }));
  engine.stop();

  const auto s = engine.status(probe).value();
  EXPECT_TRUE(s.serving);
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[0].from, HealthState::kUp);
  EXPECT_EQ(s.history[0].to, HealthState::kDraining);
  EXPECT_EQ(s.history[0].detail, "HTTP 503");
  EXPECT_EQ(s.history[1].to, HealthState::kDown);
  EXPECT_EQ(s.history[1].reason, FailReason::kRefused);
  EXPECT_EQ(s.history[2].to, HealthState::kUp);
  EXPECT_EQ(s.history[2].detail, "HTTP 200");
  EXPECT_EQ(s.transitions, 3u);
  EXPECT_EQ(changes.load(), 2);  // serving off at the drain, on again at the end
  EXPECT_GT(s.last_probe_unix_ms, 0);
  EXPECT_EQ(s.last_change_unix_ms, s.history[2].unix_ms);
}

// Kept-alive connections through the engine: one per target, closed when the target goes.
TEST(HealthEngineEndToEnd, KeepsOneConnectionPerTargetAndClosesItWhenTheTargetIsRemoved) {
  TestResponder r;
  r.keepAlive(true);
  r.respond(TestResponder::http(200, "", "ok", false));
  HealthEngine engine(HealthEngine::Options{}, nullptr);
  const ProbeSpec probe = http(r.port());
  engine.setTargets({{probe, {.interval_ms = 20, .timeout_ms = 1000, .rise = 1, .fall = 1}}});
  engine.start();
  auto eventually = [](auto pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return pred();
  };
  ASSERT_TRUE(eventually([&] { return engine.status(probe)->probes >= 5; }));
  EXPECT_EQ(engine.status(probe)->failures, 0u);
  EXPECT_EQ(r.accepted(), 1);
  engine.setTargets({});
  EXPECT_TRUE(eventually([&] { return r.openConnections() == 0; }));
  engine.stop();
}

}  // namespace
}  // namespace ng::health
