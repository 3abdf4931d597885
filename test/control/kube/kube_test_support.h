#pragma once
// Shared by the ng_kube tests: temporary directories, throwaway TLS material (openssl
// CLI, made once per test binary), a cpp-httplib server on 127.0.0.1 with a port the
// kernel picks, a scripted ApiClient and a sink that records what it was given.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/kube/api_client.h"
#include "control/kube/reflector.h"

namespace ng::kube::testing {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ng-kube-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Throwaway PKI: a CA, a server certificate for IP 127.0.0.1 signed by it, a server
// certificate for another name (example.com) signed by it, a client certificate signed by
// it, and an unrelated CA.
struct Pki {
  TempDir dir;
  std::string ca_pem, other_ca_pem, client_cert_pem, client_key_pem;
  std::string ca_file, server_cert, server_key, wrong_name_cert, wrong_name_key;

  static const Pki& get() {
    static const Pki pki;
    return pki;
  }

 private:
  Pki() {
    const std::string d = dir.path().string();
    auto run = [&](const std::string& cmd) {
      const int rc = std::system(("cd '" + d + "' && " + cmd + " >/dev/null 2>&1").c_str());
      if (rc != 0) throw std::runtime_error("openssl failed: " + cmd);
    };
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run("openssl req -x509 " + ec + " -keyout ca.key -out ca.crt -subj /CN=ng-test-ca -days 2");
    run("openssl req -x509 " + ec + " -keyout other.key -out other.crt -subj /CN=ng-other-ca -days 2");
    auto leaf = [&](const std::string& name, const std::string& cn, const std::string& ext) {
      spit(dir.path() / (name + ".ext"), ext);
      run("openssl req " + ec + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + cn);
      run("openssl x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -out " + name +
          ".crt -days 2 -extfile " + name + ".ext");
    };
    leaf("server", "ng-test-server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    leaf("wrongname", "example.com", "subjectAltName=DNS:example.com\nextendedKeyUsage=serverAuth\n");
    leaf("client", "nodegate", "extendedKeyUsage=clientAuth\n");
    ca_file = dir.file("ca.crt");
    ca_pem = slurp(ca_file);
    other_ca_pem = slurp(dir.file("other.crt"));
    client_cert_pem = slurp(dir.file("client.crt"));
    client_key_pem = slurp(dir.file("client.key"));
    server_cert = dir.file("server.crt");
    server_key = dir.file("server.key");
    wrong_name_cert = dir.file("wrongname.crt");
    wrong_name_key = dir.file("wrongname.key");
  }
};

// Runs an httplib server (plain or TLS) on 127.0.0.1:<kernel-chosen port> until destroyed.
class TestServer {
 public:
  explicit TestServer(std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>())
      : server_(std::move(server)) {}
  ~TestServer() { stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  httplib::Server& operator*() { return *server_; }
  httplib::Server* operator->() { return server_.get(); }

  void start() {
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 500 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(server_->is_running());
  }
  void stop() {
    closing.store(true);
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(bool tls) const {
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }

  std::atomic<bool> closing{false};  // streaming handlers give up when set

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

inline std::unique_ptr<httplib::Server> tlsServer(const std::string& cert, const std::string& key,
                                                  const char* client_ca = nullptr) {
  auto s = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str(), client_ca);
  EXPECT_TRUE(s->is_valid());
  return s;
}

// ---- reflector fakes ---------------------------------------------------------------------

inline nlohmann::json obj(const std::string& ns, const std::string& name, const std::string& rv,
                          const std::string& uid = "") {
  nlohmann::json o{{"metadata", {{"name", name}, {"resourceVersion", rv}, {"uid", uid.empty() ? "uid-" + name : uid}}}};
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  return o;
}

inline std::string listBody(const std::vector<nlohmann::json>& items, const std::string& rv,
                            const std::string& continue_token = "") {
  nlohmann::json meta{{"resourceVersion", rv}};
  if (!continue_token.empty()) meta["continue"] = continue_token;
  return nlohmann::json{{"kind", "List"}, {"metadata", meta}, {"items", items}}.dump();
}

inline std::string event(const std::string& type, const nlohmann::json& object) {
  return nlohmann::json{{"type", type}, {"object", object}}.dump();
}

inline std::string expiredEvent() {
  return event("ERROR", {{"kind", "Status"},
                         {"apiVersion", "v1"},
                         {"status", "Failure"},
                         {"reason", "Expired"},
                         {"message", "too old resource version: 1 (50)"},
                         {"code", 410}});
}

// An ApiClient that plays a script, one step per call, and records every call. When the
// script is used up, every call blocks until cancel() (an idle watch): a test waits for
// waitExhausted() and then stops the reflector.
class ScriptedClient final : public ApiClient {
 public:
  struct Step {
    bool stream = false;
    Response response;
    std::vector<std::string> lines;   // stream(): delivered before `response` is returned
    bool block_after = false;         // stream(): then wait for cancel()
    std::function<void()> on_call;    // runs on the caller's thread when the step starts
  };
  struct Call {
    bool stream;
    std::string target;
    std::chrono::steady_clock::time_point at;
  };

  ScriptedClient& list(std::string body, std::function<void()> on_call = {}) {
    steps_.push_back(Step{.stream = false, .response = {.status = 200, .body = std::move(body)}, .on_call = std::move(on_call)});
    return *this;
  }
  ScriptedClient& getStatus(int status, std::chrono::seconds retry_after = std::chrono::seconds{0},
                            std::function<void()> on_call = {}) {
    steps_.push_back(Step{.stream = false,
                          .response = {.status = status, .body = R"({"kind":"Status","message":"scripted"})",
                                       .error = status == 0 ? "connection refused" : "",
                                       .retry_after = retry_after},
                          .on_call = std::move(on_call)});
    return *this;
  }
  ScriptedClient& watch(std::vector<std::string> lines, Response end = {.status = 200}) {
    steps_.push_back(Step{.stream = true, .response = std::move(end), .lines = std::move(lines)});
    return *this;
  }
  ScriptedClient& watchStatus(int status, std::chrono::seconds retry_after = std::chrono::seconds{0}) {
    steps_.push_back(Step{.stream = true, .response = {.status = status, .retry_after = retry_after}});
    return *this;
  }

  Response get(const std::string& target) override { return play(false, target, nullptr); }
  Response stream(const std::string& target, const std::function<bool(std::string_view)>& on_line) override {
    return play(true, target, &on_line);
  }
  Response patch(const std::string&, const std::string&, const std::string&) override { return {.status = 501}; }
  Response post(const std::string&, const std::string&) override { return {.status = 501}; }
  void cancel() override {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    cv_.notify_all();
  }

  // True once every step was played and a call is blocked (or the reflector is idle).
  bool waitExhausted(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return steps_.empty() && blocked_; });
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<std::string> targets(bool stream) const {
    std::vector<std::string> out;
    for (const Call& c : calls()) {
      if (c.stream == stream) out.push_back(c.target);
    }
    return out;
  }

 private:
  Response play(bool stream, const std::string& target, const std::function<bool(std::string_view)>* on_line) {
    Step step;
    bool have = false;
    {
      std::lock_guard lock(mutex_);
      calls_.push_back(Call{stream, target, std::chrono::steady_clock::now()});
      if (!steps_.empty()) {
        step = std::move(steps_.front());
        steps_.pop_front();
        have = true;
        EXPECT_EQ(step.stream, stream) << "script expected a " << (step.stream ? "stream" : "get") << ", got "
                                       << target;
      }
    }
    if (have && step.on_call) step.on_call();
    if (!have) {
      std::unique_lock lock(mutex_);
      blocked_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return cancelled_; });
      cancelled_ = false;
      return Response{.status = stream ? 200 : 0, .error = "cancelled"};
    }
    if (stream) {
      for (const std::string& line : step.lines) {
        if (!(*on_line)(line)) break;
      }
    }
    return step.response;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Step> steps_;
  std::vector<Call> calls_;
  bool blocked_ = false;
  bool cancelled_ = false;
};

// Records sink calls as "upsert ns/name@rv", "remove ns/name@rv#uid", "synced".
class RecordingSink final : public ReflectorSink {
 public:
  void upsert(const nlohmann::json& o) override { add("upsert " + describe(o)); }
  void remove(const nlohmann::json& o) override { add("remove " + describe(o)); }
  void synced() override { add("synced"); }
  std::vector<std::string> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(log_, {});
  }

 private:
  static std::string describe(const nlohmann::json& o) {
    const auto& m = o["metadata"];
    std::string key = m.contains("namespace") ? m["namespace"].get<std::string>() + "/" : "";
    key += m["name"].get<std::string>() + "@" + m["resourceVersion"].get<std::string>();
    if (m.contains("uid")) key += "#" + m["uid"].get<std::string>();
    return key;
  }
  void add(std::string s) {
    std::lock_guard lock(mutex_);
    log_.push_back(std::move(s));
  }
  std::mutex mutex_;
  std::vector<std::string> log_;
};

}  // namespace ng::kube::testing
