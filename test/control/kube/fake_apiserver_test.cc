// HttpApiClient + Reflector against the project's fake API server
// (test/fake_apiserver/fake_apiserver.py: TLS, bearer token, paging, watch with bookmarks,
// fault injection). An extra check on top of the unit tests; skipped when python3 or the
// script is missing.

#include <gtest/gtest.h>
#include <httplib.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "control/kube/api_client.h"
#include "control/kube/reflector.h"
#include "test/control/kube/kube_test_support.h"

namespace ng::kube {
namespace {

using namespace std::chrono_literals;
using testing::Pki;
using testing::RecordingSink;
using testing::TempDir;
using Strings = std::vector<std::string>;
namespace fs = std::filesystem;

const fs::path kScript = fs::path(NG_SOURCE_DIR) / "test/fake_apiserver/fake_apiserver.py";

class FakeApiServer {
 public:
  explicit FakeApiServer(const TempDir& dir) {
    testing::spit(dir.path() / "state.json", R"({"services":[
      {"metadata":{"name":"web","namespace":"shop"},"spec":{"type":"LoadBalancer","ports":[{"port":80,"protocol":"TCP"}]}},
      {"metadata":{"name":"api","namespace":"shop"},"spec":{"type":"ClusterIP","ports":[{"port":443,"protocol":"TCP"}]}}
    ]})");
    const std::string port_file = dir.file("port");
    const Pki& pki = Pki::get();  // made before fork(): the child must use the same files
    log_ = dir.file("fake.log");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      // Its output goes to a file: an inherited stdout would outlive a crashed test.
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execl("/usr/bin/python3", "python3", kScript.c_str(), "--port", "0", "--port-file", port_file.c_str(), "--cert",
            pki.server_cert.c_str(), "--key", pki.server_key.c_str(), "--token", "s3cret", "--state",
            dir.file("state.json").c_str(), "--bookmark-interval", "0.2", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 1000 && port_ == 0; ++i) {
      std::this_thread::sleep_for(10ms);
      const std::string text = testing::slurp(port_file);
      if (!text.empty()) port_ = std::stoi(text);
    }
  }
  ~FakeApiServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(10ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  [[nodiscard]] std::string log() const { return testing::slurp(log_); }
  [[nodiscard]] int port() const { return port_; }

  // The admin API (/_fake/...), no authentication.
  // The HTTP status of an admin call, -1 when it failed.
  int admin(const std::string& method, const std::string& path, const std::string& body = "{}") {
    const httplib::Result r = call(method, path, body);
    return r ? r->status : -1;
  }

 private:
  httplib::Result call(const std::string& method, const std::string& path, const std::string& body) {
    httplib::SSLClient c("127.0.0.1", port_);
    c.set_ca_cert_path(Pki::get().ca_file.c_str());
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    if (method == "POST") return c.Post(path.c_str(), body, "application/json");
    if (method == "PATCH") return c.Patch(path.c_str(), body, "application/json");
    return c.Delete(path.c_str());
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

// Waits until the sink has logged `n` more entries (or 10 s).
Strings waitFor(RecordingSink& sink, Strings& log, size_t n) {
  for (int i = 0; i < 1000 && log.size() < n; ++i) {
    for (std::string& s : sink.take()) log.push_back(std::move(s));
    if (log.size() < n) std::this_thread::sleep_for(10ms);
  }
  return log;
}

std::string nameOf(const std::string& entry) {  // "upsert shop/web@12#uid" -> "upsert shop/web"
  return entry.substr(0, entry.find('@'));
}

TEST(FakeApiServer, ReflectorFollowsChangesExpiryAndCuts) {
  if (!fs::exists(kScript) || !fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no fake API server";
  TempDir dir;
  FakeApiServer fake(dir);
  ASSERT_GT(fake.port(), 0) << "the fake API server did not start";
  struct DumpOnFailure {
    FakeApiServer& fake;
    ~DumpOnFailure() {
      if (::testing::Test::HasFailure()) std::cerr << "fake_apiserver output:\n" << fake.log();
    }
  } dump{fake};
  testing::spit(dir.path() / "token", "s3cret\n");
  auto client = HttpApiClient::create({.server = "https://127.0.0.1:" + std::to_string(fake.port()),
                                       .ca_pem = Pki::get().ca_pem,
                                       .token_file = dir.file("token")});
  ASSERT_TRUE(client.has_value()) << client.error();
  RecordingSink sink;
  Reflector reflector(**client,
                      Reflector::Options{.path = "/api/v1/services",
                                         .page_size = 1,  // two pages at least: exercises continue
                                         .backoff_initial = 10ms,
                                         .backoff_max = 100ms},
                      sink);
  std::jthread thread([&](std::stop_token stop) { reflector.run(stop); });

  Strings log;
  waitFor(sink, log, 3);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(nameOf(log[0]), "upsert shop/api");  // etcd key order
  EXPECT_EQ(nameOf(log[1]), "upsert shop/web");
  EXPECT_EQ(log[2], "synced");

  // A change made by someone else arrives as one upsert.
  ASSERT_EQ(fake.admin("PATCH", "/_fake/objects/services/shop/web", R"({"metadata":{"labels":{"x":"1"}}})"),
            200);
  waitFor(sink, log, 4);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(nameOf(log[3]), "upsert shop/web");

  // The next watch is told its RV expired: relist, nothing unchanged is delivered again.
  ASSERT_EQ(fake.admin("POST", "/_fake/faults", R"({"type":"watch_expired","count":1})"), 201);
  ASSERT_EQ(fake.admin("POST", "/_fake/close-watches"), 200);
  waitFor(sink, log, 5);
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[4], "synced");
  EXPECT_EQ(reflector.status().relists_after_expiry, 1u);

  // A deletion after a cut watch: re-watched from the last RV, the deletion is seen.
  ASSERT_EQ(fake.admin("POST", "/_fake/close-watches"), 200);
  ASSERT_EQ(fake.admin("DELETE", "/_fake/objects/services/shop/api"), 200);
  waitFor(sink, log, 6);
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(nameOf(log[5]), "remove shop/api");

  const ReflectorStatus st = reflector.status();
  EXPECT_EQ(st.lists, 2u);
  EXPECT_EQ(st.relists_after_expiry, 1u);
  EXPECT_FALSE(st.failing_since.has_value()) << st.last_error;
  EXPECT_EQ(st.objects, 1u);
  const auto asked = std::chrono::steady_clock::now();
  thread.request_stop();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
}

}  // namespace
}  // namespace ng::kube
