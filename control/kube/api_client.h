#pragma once
// The seam between NodeGate and the Kubernetes API server (STYLE.md principle 4):
// ApiClient is what the reflectors and the controller talk to; HttpApiClient is the real
// one (cpp-httplib + OpenSSL); tests script fakes. See KUBERNETES.md "Talking to the API
// server".

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/kube/kube_access.h"

namespace ng::kube {

class ApiClient {
 public:
  struct Response {
    int status = 0;           // HTTP status; 0 = transport error (refused, TLS, timeout, cut)
    std::string body;         // empty for stream() (see there)
    std::string error;        // transport error text when status == 0
    std::chrono::seconds retry_after{0};  // from a Retry-After header, else 0
  };
  virtual ~ApiClient() = default;
  virtual Response get(const std::string& target) = 0;               // target = path + query
  // Streams the response body, calling on_line for each complete newline-terminated line
  // (framing on newlines, never on chunks; a final partial line is dropped). Returns when the
  // stream ends, on error, when on_line returns false, or after cancel(). status = HTTP status.
  virtual Response stream(const std::string& target, const std::function<bool(std::string_view)>& on_line) = 0;
  virtual Response patch(const std::string& target, const std::string& body, const std::string& content_type) = 0;
  virtual Response post(const std::string& target, const std::string& body) = 0;
  virtual void cancel() = 0;  // any thread: makes the stream() in flight return promptly (≤1 s)
};

// Splits a byte stream into newline-terminated lines whatever the chunking: the framing
// of HttpApiClient::stream(), public for tests. A trailing '\r' is removed; a line longer
// than `max_line` is an error (the stream is given up, never half-delivered).
class LineFramer {
 public:
  explicit LineFramer(size_t max_line) : max_line_(max_line) {}
  enum class Result { kMore, kStopped, kTooLong };
  // Calls on_line for every line completed by `data`; kStopped as soon as on_line returns
  // false (the rest is dropped).
  Result feed(std::string_view data, const std::function<bool(std::string_view)>& on_line);
  [[nodiscard]] size_t pending() const noexcept { return partial_.size(); }  // bytes of an unfinished line

 private:
  size_t max_line_;
  std::string partial_;
};

// The real client.
//
// Transport: HTTP/1.1 over TLS (or plain http), kept-alive connections reused between
// calls. TLS verifies the server's chain against KubeAccess::ca_pem only (the system's
// CAs are not trusted) and its name or IP against the server URL; it is never skipped.
// A client certificate is presented when one is configured.
//
// Credentials: the bearer token is `token_file`'s first line when set (re-read about every
// `token_refresh` and after every 401), else `token`. A call answered 401 is repeated once
// after the re-read. A token or client certificate is never sent over plain http: create()
// refuses such access.
//
// Threads: every method may be called from any thread, concurrently; each call uses its
// own connection. cancel() ends every call in flight at that moment (stream, get, patch,
// post: they return status 0, error "cancelled", or the HTTP status with error "cancelled"
// if the headers had arrived); when no stream() is in flight, the next stream() to start
// returns at once instead (so that a cancel() racing a stream()'s start is not lost). A
// call still connecting (TCP + TLS handshake) is only cut once connected, i.e. within
// connect_timeout. Share one client only among users that stop together, or give each
// reflector its own.
//
// Signals: the first create() sets SIGPIPE to ignored when it is at its default, so a
// write into a connection the server closed fails with EPIPE instead of killing the
// process (cpp-httplib 0.11 and OpenSSL do not suppress it per call).
//
// stream(): HTTP status once the headers arrived; for a 2xx, `error` is empty after a
// clean end or when on_line returned false, else says why it ended (cut, timeout,
// line too long, cancelled); a non-2xx answer's body (bounded) is in `body` and on_line is
// not called. get()/patch()/post(): status 0 with `error` on a transport failure.
class HttpApiClient final : public ApiClient {
 public:
  struct Options {
    std::chrono::seconds connect_timeout{5};   // TCP connect, and again the TLS handshake
    std::chrono::seconds read_timeout{30};     // get/patch/post: longest wait for the next bytes
    std::chrono::seconds write_timeout{10};
    // stream(): longest silence before a watch is given up as dead. The API server sends a
    // bookmark about once a minute and ends watches after timeoutSeconds; silence beyond
    // this means a dead peer. cancel() does not wait for it.
    std::chrono::seconds stream_read_timeout{150};
    std::chrono::seconds token_refresh{60};
    size_t max_line = 32 * 1024 * 1024;       // longest watch event accepted
    size_t max_idle_connections = 4;
    std::string user_agent = "nodegate";
  };

  // Checks everything that can be checked without connecting: the URL (http or https,
  // host, port), the CA bundle (at least one certificate) for https, the client
  // certificate and key (parse, match), the token file (readable, not empty), and that no
  // credential would go over plain http. Errors name what is wrong.
  [[nodiscard]] static std::expected<std::unique_ptr<HttpApiClient>, std::string> create(KubeAccess access,
                                                                                         Options options);
  [[nodiscard]] static std::expected<std::unique_ptr<HttpApiClient>, std::string> create(KubeAccess access) {
    return create(std::move(access), Options{});
  }
  ~HttpApiClient() override;
  HttpApiClient(const HttpApiClient&) = delete;
  HttpApiClient& operator=(const HttpApiClient&) = delete;

  Response get(const std::string& target) override;
  Response stream(const std::string& target, const std::function<bool(std::string_view)>& on_line) override;
  Response patch(const std::string& target, const std::string& body, const std::string& content_type) override;
  Response post(const std::string& target, const std::string& body) override;
  void cancel() override;

  // Times the token file was read (for tests and the status API).
  [[nodiscard]] uint64_t tokenReads() const noexcept;

 private:
  struct Impl;
  explicit HttpApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ng::kube
