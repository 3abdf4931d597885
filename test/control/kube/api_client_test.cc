#include "control/kube/api_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "control/kube/reflector.h"
#include "test/control/kube/kube_test_support.h"

namespace ng::kube {
namespace {

using namespace std::chrono_literals;
using testing::Pki;
using testing::TempDir;
using testing::TestServer;
using Strings = std::vector<std::string>;

std::unique_ptr<HttpApiClient> makeClient(KubeAccess access, HttpApiClient::Options options = {}) {
  auto client = HttpApiClient::create(std::move(access), options);
  EXPECT_TRUE(client.has_value()) << (client ? "" : client.error());
  return client ? std::move(*client) : nullptr;
}

KubeAccess tlsAccess(const TestServer& server) {
  return KubeAccess{.server = server.url(true), .ca_pem = Pki::get().ca_pem};
}

// ---- LineFramer ---------------------------------------------------------------------------

TEST(LineFramer, SameLinesWhateverTheChunkingAndTheFinalPartialLineIsDropped) {
  const std::string input = "{\"a\":1}\n\n{\"b\":\"x\\ny\"}\r\nlast\npartial";
  const Strings expected{"{\"a\":1}", "", "{\"b\":\"x\\ny\"}", "last"};
  // Every way of cutting the input in two and in three pieces.
  for (size_t i = 0; i <= input.size(); ++i) {
    for (size_t j = i; j <= input.size(); ++j) {
      LineFramer framer(1024);
      Strings lines;
      auto collect = [&](std::string_view l) {
        lines.emplace_back(l);
        return true;
      };
      for (auto piece : {std::string_view(input).substr(0, i), std::string_view(input).substr(i, j - i),
                         std::string_view(input).substr(j)}) {
        ASSERT_EQ(framer.feed(piece, collect), LineFramer::Result::kMore);
      }
      ASSERT_EQ(lines, expected) << "cut at " << i << ", " << j;
      EXPECT_EQ(framer.pending(), 7u);  // "partial"
    }
  }
}

TEST(LineFramer, StopsWhenTheCallbackSaysSoAndRefusesOverlongLines) {
  LineFramer framer(8);
  int calls = 0;
  EXPECT_EQ(framer.feed("a\nb\nc\n", [&](std::string_view) { return ++calls < 2; }), LineFramer::Result::kStopped);
  EXPECT_EQ(calls, 2);
  LineFramer small(8);
  EXPECT_EQ(small.feed("12345", [](std::string_view) { return true; }), LineFramer::Result::kMore);
  EXPECT_EQ(small.feed("6789", [](std::string_view) { return true; }), LineFramer::Result::kTooLong);
  LineFramer whole(8);
  EXPECT_EQ(whole.feed("123456789\n", [](std::string_view) { return true; }), LineFramer::Result::kTooLong);
}

// ---- streaming over real HTTP -----------------------------------------------------------

// Serves GET /watch as a chunked body written in the given pieces, with a pause between
// them so that they reach the client as separate reads; `cut` aborts the connection
// after the last piece instead of ending the body.
void servePieces(TestServer& server, std::vector<std::string> pieces, bool cut) {
  server->Get("/watch", [pieces, cut](const httplib::Request&, httplib::Response& res) {
    auto next = std::make_shared<size_t>(0);
    res.set_chunked_content_provider("application/json", [pieces, cut, next](size_t, httplib::DataSink& sink) {
      if (*next == pieces.size()) {
        if (cut) return false;  // drops the connection without the final chunk
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(5ms);
      sink.write(pieces[*next].data(), pieces[*next].size());
      ++*next;
      return true;
    });
  });
}

TEST(HttpApiClient, StreamFramesOnNewlinesAcrossChunks) {
  TestServer server;
  servePieces(server, {"{\"type\":\"AD", "DED\"}\n{\"ty", "pe\":\"B\"}\n", "\n", "{\"c\":", "3}\n{\"tail\""}, false);
  server.start();
  auto client = makeClient({.server = server.url(false)});
  Strings lines;
  auto r = client->stream("/watch", [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(lines, (Strings{"{\"type\":\"ADDED\"}", "{\"type\":\"B\"}", "", "{\"c\":3}"}));
}

TEST(HttpApiClient, StreamCutMidLineDeliversTheCompleteLinesAndSaysItWasCut) {
  TestServer server;
  servePieces(server, {"one\ntw", "o\nthr"}, true);
  server.start();
  auto client = makeClient({.server = server.url(false)});
  Strings lines;
  auto r = client->stream("/watch", [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.error.find("cut"), std::string::npos) << r.error;
  EXPECT_EQ(lines, (Strings{"one", "two"}));
}

TEST(HttpApiClient, StreamEndsWhenTheCallbackReturnsFalse) {
  TestServer server;
  servePieces(server, {"a\nb\nc\n"}, false);
  server.start();
  auto client = makeClient({.server = server.url(false)});
  Strings lines;
  auto r = client->stream("/watch", [&](std::string_view l) {
    lines.emplace_back(l);
    return false;
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(lines, Strings{"a"});
}

TEST(HttpApiClient, StreamErrorStatusIsReportedWithoutLines) {
  TestServer server;
  server->Get("/watch", [](const httplib::Request&, httplib::Response& res) {
    res.status = 410;
    res.set_content("{\"kind\":\"Status\",\"code\":410}\n", "application/json");
  });
  server.start();
  auto client = makeClient({.server = server.url(false)});
  int lines = 0;
  auto r = client->stream("/watch", [&](std::string_view) {
    ++lines;
    return true;
  });
  EXPECT_EQ(r.status, 410);
  EXPECT_EQ(lines, 0);
  EXPECT_NE(r.body.find("\"code\":410"), std::string::npos);
}

// A watch that stays open, writing nothing, until the test ends.
void idleStream(TestServer& server, std::atomic<int>& opened, httplib::Response& res) {
  ++opened;
  res.set_chunked_content_provider("application/json", [&server](size_t, httplib::DataSink& sink) {
    if (server.closing.load()) return false;
    std::this_thread::sleep_for(20ms);
    return sink.is_writable();
  });
}

void serveIdleWatch(TestServer& server, std::atomic<int>& opened) {
  server->Get("/watch", [&server, &opened](const httplib::Request&, httplib::Response& res) {
    idleStream(server, opened, res);
  });
}

TEST(HttpApiClient, CancelEndsABlockedStreamPromptly) {
  TestServer server;
  std::atomic<int> opened{0};
  serveIdleWatch(server, opened);
  server.start();
  auto client = makeClient({.server = server.url(false)});
  std::atomic<bool> returned{false};
  ApiClient::Response r;
  std::thread t([&] {
    r = client->stream("/watch", [](std::string_view) { return true; });
    returned = true;
  });
  while (opened.load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(returned.load());
  const auto asked = std::chrono::steady_clock::now();
  client->cancel();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error, "cancelled");
  // The client stays usable: a cancel() with nothing in flight cancels the next stream
  // (one that raced it) once, then streams work again.
  client->cancel();
  EXPECT_EQ(client->stream("/watch", [](std::string_view) { return true; }).error, "cancelled");
  server.closing = true;
  EXPECT_EQ(client->get("/nothing").status, 404);
}

TEST(HttpApiClient, StoppingAReflectorBlockedInAWatchReturnsWithinASecond) {
  TestServer server;
  std::atomic<int> opened{0};
  server->Get("/api/v1/services", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("watch")) {
      EXPECT_EQ(req.get_param_value("resourceVersion"), "7");
      EXPECT_EQ(req.get_param_value("allowWatchBookmarks"), "true");
      idleStream(server, opened, res);
      return;
    }
    EXPECT_EQ(req.get_param_value("limit"), "500");
    res.set_content(testing::listBody({testing::obj("a", "x", "1")}, "7"), "application/json");
  });
  server.start();
  auto client = makeClient({.server = server.url(false)});
  testing::RecordingSink sink;
  Reflector reflector(*client, Reflector::Options{.path = "/api/v1/services"}, sink);
  std::jthread thread([&](std::stop_token stop) { reflector.run(stop); });
  while (opened.load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);
  const auto asked = std::chrono::steady_clock::now();
  thread.request_stop();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  server.closing = true;
  EXPECT_EQ(sink.take(), (Strings{"upsert a/x@1#uid-x", "synced"}));
  EXPECT_EQ(reflector.status().watches, 1u);
  EXPECT_EQ(reflector.status().failures, 0u);
}

// ---- plain calls ---------------------------------------------------------------------------

TEST(HttpApiClient, GetPatchPostCarryStatusBodyHeadersAndRetryAfter) {
  TestServer server;
  std::mutex mutex;
  std::vector<std::string> seen;
  server->Get("/api/v1/services", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("{\"q\":\"" + req.get_param_value("limit") + "\"}", "application/json");
  });
  server->Get("/busy", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "7");
  });
  server->Patch("/api/v1/namespaces/a/services/x/status", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex);
    seen.push_back(req.get_header_value("Content-Type") + " " + req.body);
    res.set_content("{}", "application/json");
  });
  server->Post("/api/v1/namespaces/a/events", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex);
    seen.push_back(req.get_header_value("Content-Type") + " " + req.body);
    res.status = 201;
  });
  server.start();
  auto client = makeClient({.server = server.url(false)});
  auto r = client->get("/api/v1/services?limit=500");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"q\":\"500\"}");
  auto busy = client->get("/busy");
  EXPECT_EQ(busy.status, 429);
  EXPECT_EQ(busy.retry_after, 7s);
  EXPECT_EQ(client->patch("/api/v1/namespaces/a/services/x/status", R"({"status":{}})", "application/merge-patch+json")
                .status,
            200);
  EXPECT_EQ(client->post("/api/v1/namespaces/a/events", R"({"kind":"Event"})").status, 201);
  EXPECT_EQ(seen, (Strings{R"(application/merge-patch+json {"status":{}})", R"(application/json {"kind":"Event"})"}));
}

TEST(HttpApiClient, ServerPathPrefixIsKept) {
  TestServer server;
  server->Get("/k8s/clusters/c-1/api/v1/nodes", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{}", "application/json");
  });
  server.start();
  auto client = makeClient({.server = server.url(false) + "/k8s/clusters/c-1/"});
  EXPECT_EQ(client->get("/api/v1/nodes").status, 200);
}

TEST(HttpApiClient, ConnectionRefusedIsATransportError) {
  int port;
  {
    TestServer server;
    server.start();
    port = server.port();
  }
  auto client = makeClient({.server = "http://127.0.0.1:" + std::to_string(port)});
  auto r = client->get("/api/v1/nodes");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("connection"), std::string::npos) << r.error;
}

TEST(HttpApiClient, RefusesToSendCredentialsOverPlainHttp) {
  TempDir dir;
  testing::spit(dir.path() / "token", "secret\n");
  auto with_token = HttpApiClient::create({.server = "http://127.0.0.1:1", .token = "secret"});
  ASSERT_FALSE(with_token.has_value());
  EXPECT_NE(with_token.error().find("refusing to send a bearer token over plain http"), std::string::npos);
  auto with_file = HttpApiClient::create({.server = "http://127.0.0.1:1", .token_file = dir.file("token")});
  ASSERT_FALSE(with_file.has_value());
  EXPECT_NE(with_file.error().find("plain http"), std::string::npos);
  EXPECT_FALSE(HttpApiClient::create({.server = "https://127.0.0.1:1", .token = "x"}).has_value())
      << "https without a CA";
  EXPECT_FALSE(HttpApiClient::create({.server = "ftp://x"}).has_value());
  EXPECT_FALSE(HttpApiClient::create({.server = "https://127.0.0.1:99999", .ca_pem = Pki::get().ca_pem}).has_value());
  auto bad_ca = HttpApiClient::create({.server = "https://127.0.0.1:1", .ca_pem = "junk"});
  ASSERT_FALSE(bad_ca.has_value());
  EXPECT_NE(bad_ca.error().find("CA bundle"), std::string::npos);
  auto mismatched = HttpApiClient::create({.server = "https://127.0.0.1:1",
                                           .ca_pem = Pki::get().ca_pem,
                                           .client_cert_pem = Pki::get().client_cert_pem,
                                           .client_key_pem = testing::slurp(Pki::get().server_key)});
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_NE(mismatched.error().find("does not match"), std::string::npos) << mismatched.error();
}

// ---- TLS ---------------------------------------------------------------------------------

TEST(HttpApiClient, TlsVerifiesTheServerAgainstTheGivenCa) {
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key));
  server->Get("/version", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("{\"auth\":\"" + req.get_header_value("Authorization") + "\"}", "application/json");
  });
  server.start();
  auto good = makeClient({.server = server.url(true), .ca_pem = Pki::get().ca_pem, .token = "t0k"});
  auto r = good->get("/version");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "{\"auth\":\"Bearer t0k\"}");

  auto wrong = makeClient({.server = server.url(true), .ca_pem = Pki::get().other_ca_pem, .token = "t0k"});
  auto w = wrong->get("/version");
  EXPECT_EQ(w.status, 0);
  EXPECT_NE(w.error.find("TLS"), std::string::npos) << w.error;
  EXPECT_NE(w.error.find("certificate"), std::string::npos) << w.error;
  RecordProperty("wrong_ca_error", w.error);
  // The stream path verifies the same way.
  auto ws = wrong->stream("/version", [](std::string_view) { return true; });
  EXPECT_EQ(ws.status, 0);
  EXPECT_NE(ws.error.find("TLS"), std::string::npos) << ws.error;
}

TEST(HttpApiClient, TlsTrustsOnlyTheGivenCaNotTheSystemStore) {
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key));
  server->Get("/version", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  server.start();
  // Make the server's CA a "system" CA for OpenSSL's default verify paths, which
  // cpp-httplib loads when it is not given a CA of its own.
  setenv("SSL_CERT_FILE", Pki::get().ca_file.c_str(), 1);
  auto client = makeClient({.server = server.url(true), .ca_pem = Pki::get().other_ca_pem});
  auto r = client->get("/version");
  unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(r.status, 0) << "trusted a CA that is not in ca_pem";
}

TEST(HttpApiClient, TlsRefusesACertificateForAnotherName) {
  TestServer server(testing::tlsServer(Pki::get().wrong_name_cert, Pki::get().wrong_name_key));
  server->Get("/version", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  server.start();
  auto client = makeClient(tlsAccess(server));
  auto r = client->get("/version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("TLS"), std::string::npos) << r.error;
  RecordProperty("wrong_name_error", r.error);
}

TEST(HttpApiClient, ClientCertificateIsPresented) {
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key, Pki::get().ca_file.c_str()));
  server->Get("/version", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  server.start();
  KubeAccess with_cert = tlsAccess(server);
  with_cert.client_cert_pem = Pki::get().client_cert_pem;
  with_cert.client_key_pem = Pki::get().client_key_pem;
  auto r = makeClient(with_cert)->get("/version");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(makeClient(tlsAccess(server))->get("/version").status, 0) << "the server requires a client certificate";
}

// Accepts only "Bearer <expected>" and counts requests.
struct TokenGate {
  std::mutex mutex;
  std::string expected;
  Strings seen;
  void install(TestServer& server) {
    server->Get("/api/v1/nodes", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex);
      seen.push_back(req.get_header_value("Authorization"));
      if (req.get_header_value("Authorization") != "Bearer " + expected) {
        res.status = 401;
        res.set_content(R"({"kind":"Status","code":401})", "application/json");
        return;
      }
      res.set_content("{}", "application/json");
    });
  }
};

TEST(HttpApiClient, A401RereadsTheTokenFileAndRetriesOnce) {
  TempDir dir;
  testing::spit(dir.path() / "token", "old\n");
  TokenGate gate;
  gate.expected = "old";
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key));
  gate.install(server);
  server.start();
  KubeAccess access = tlsAccess(server);
  access.token = "static-is-ignored";
  access.token_file = dir.file("token");
  auto client = makeClient(access, HttpApiClient::Options{.token_refresh = 3600s});
  EXPECT_EQ(client->get("/api/v1/nodes").status, 200);
  const uint64_t reads = client->tokenReads();

  // The token rotates: the file and the server change; the client still holds "old".
  testing::spit(dir.path() / "token", "  new  \n");
  {
    std::lock_guard lock(gate.mutex);
    gate.expected = "new";
  }
  EXPECT_EQ(client->get("/api/v1/nodes").status, 200);
  EXPECT_EQ(client->tokenReads(), reads + 1);
  {
    std::lock_guard lock(gate.mutex);
    EXPECT_EQ(gate.seen, (Strings{"Bearer old", "Bearer old", "Bearer new"}));
  }
  // A server that refuses the current token too: one retry, then the 401 is returned.
  {
    std::lock_guard lock(gate.mutex);
    gate.expected = "other";
    gate.seen.clear();
  }
  EXPECT_EQ(client->get("/api/v1/nodes").status, 401);
  std::lock_guard lock(gate.mutex);
  EXPECT_EQ(gate.seen.size(), 2u);
}

TEST(HttpApiClient, TheTokenFileIsReReadPeriodically) {
  TempDir dir;
  testing::spit(dir.path() / "token", "first");
  TokenGate gate;
  gate.expected = "first";
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key));
  gate.install(server);
  server.start();
  KubeAccess access = tlsAccess(server);
  access.token_file = dir.file("token");
  auto client = makeClient(access, HttpApiClient::Options{.token_refresh = 1s});
  EXPECT_EQ(client->get("/api/v1/nodes").status, 200);
  testing::spit(dir.path() / "token", "second");
  {
    std::lock_guard lock(gate.mutex);
    gate.expected = "second";
  }
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(client->get("/api/v1/nodes").status, 200);
  std::lock_guard lock(gate.mutex);
  // The second call sent the new token straight away: no 401 round trip.
  EXPECT_EQ(gate.seen, (Strings{"Bearer first", "Bearer second"}));
}

TEST(HttpApiClient, AStaticTokenIsNotRetriedOn401) {
  TokenGate gate;
  gate.expected = "right";
  TestServer server(testing::tlsServer(Pki::get().server_cert, Pki::get().server_key));
  gate.install(server);
  server.start();
  KubeAccess access = tlsAccess(server);
  access.token = "wrong";
  EXPECT_EQ(makeClient(access)->get("/api/v1/nodes").status, 401);
  std::lock_guard lock(gate.mutex);
  EXPECT_EQ(gate.seen, Strings{"Bearer wrong"});
}

}  // namespace
}  // namespace ng::kube
