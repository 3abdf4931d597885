#pragma once
// ngctl's HTTP side: one NodeGate API base URL, blocking requests through cpp-httplib, and
// transport failures turned into words an operator can act on ("connection refused",
// "timed out after 5 s"). HTTP error statuses are not failures here: the caller gets the
// status and body and decides what to print.
//
// Threading: an ApiClient is used by one thread at a time. Requests block for at most
// about twice the timeout (connect, then read).

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

namespace httplib {
class Client;
}

namespace ng::ngctl {

// "http://127.0.0.1:9080", "https://lb.example:8443/nodegate" split into its parts.
struct ApiUrl {
  std::string scheme;    // "http" or "https"
  std::string host;      // without brackets for IPv6 literals
  int port = 0;          // the scheme's default when the URL has none
  std::string basePath;  // "" or "/prefix" (no trailing slash), prepended to every path
};

// Errors name what is wrong: "expected http://HOST[:PORT][/PATH], got 'foo'".
[[nodiscard]] std::expected<ApiUrl, std::string> parseApiUrl(std::string_view url);

struct ClientOptions {
  ApiUrl url;
  std::string token;  // sent as "Authorization: Bearer TOKEN" when not empty
  std::chrono::milliseconds timeout{5000};
  // https only: verify the box's certificate against this PEM bundle instead of the
  // system's; or, with `insecure`, not at all (a self-signed box on a trusted path).
  std::string ca_file;
  bool insecure = false;
};

struct Reply {
  int status = 0;
  std::string body;
  std::string contentType;
};

// The request never got an HTTP answer; `reason` completes "cannot reach NodeGate at URL: ".
struct TransportError {
  std::string reason;
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // `path` starts with '/', e.g. "/v1/vips".
  [[nodiscard]] std::expected<Reply, TransportError> get(const std::string& path);
  [[nodiscard]] std::expected<Reply, TransportError> put(const std::string& path, const std::string& jsonBody);
  [[nodiscard]] std::expected<Reply, TransportError> del(const std::string& path);

 private:
  ClientOptions options_;
  std::unique_ptr<httplib::Client> http_;
};

// Tries one TCP connect to host:port and says why it fails: "connection refused",
// "no route to host", "timed out after 5 s", "cannot resolve 'box': Name or service not
// known". Returns "" when the connect succeeds. Used after cpp-httplib reports a bare
// connection error, which does not keep errno.
[[nodiscard]] std::string diagnoseConnect(const std::string& host, int port, std::chrono::milliseconds timeout);

}  // namespace ng::ngctl
