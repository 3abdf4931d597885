#include "control/ngctl/api_client.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace ng::ngctl {
namespace {

std::string secondsText(std::chrono::milliseconds t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

// strerror() with a lower-case first letter, to read as the end of a sentence.
std::string errnoText(int e) {
  std::string s = std::strerror(e);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && (s.size() < 2 || !(s[1] >= 'A' && s[1] <= 'Z'))) {
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  }
  return s;
}

struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::expected<ApiUrl, std::string> parseApiUrl(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return std::unexpected("expected http://HOST[:PORT][/PATH], got '" + std::string(url) + "' (" +
                           std::string(why) + ")");
  };
  ApiUrl out;
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("no scheme");
  out.scheme = std::string(url.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https") return bad("scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (path.find_first_of("?#") != std::string_view::npos) return bad("no query or fragment allowed");
    out.basePath = std::string(path);
  }
  if (authority.find('@') != std::string_view::npos) return bad("no user info allowed; use --token-file");
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '['");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after ']'");
      portText = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) portText = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (portText.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), out.port);
    if (ec != std::errc() || end != portText.data() + portText.size() || out.port < 1 || out.port > 65535) {
      return bad("port must be 1..65535");
    }
  }
  return out;
}

ApiClient::ApiClient(ClientOptions options) : options_(std::move(options)) {
  const ApiUrl& u = options_.url;
  const std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  http_ = std::make_unique<httplib::Client>(u.scheme + "://" + host + ":" + std::to_string(u.port));
  const auto t = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout);
  const time_t sec = static_cast<time_t>(t.count() / 1'000'000);
  const time_t usec = static_cast<time_t>(t.count() % 1'000'000);
  http_->set_connection_timeout(sec, usec);
  http_->set_read_timeout(sec, usec);
  http_->set_write_timeout(sec, usec);
  http_->set_keep_alive(false);
  if (!options_.token.empty()) http_->set_bearer_token_auth(options_.token);
  if (!options_.ca_file.empty()) http_->set_ca_cert_path(options_.ca_file.c_str());
  if (options_.insecure) http_->enable_server_certificate_verification(false);
}

ApiClient::~ApiClient() = default;

namespace {

std::expected<Reply, TransportError> toReply(httplib::Result result, const ClientOptions& options,
                                             std::chrono::steady_clock::time_point started) {
  if (result) {
    return Reply{.status = result->status,
                 .body = result->body,
                 .contentType = result->get_header_value("Content-Type")};
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  switch (result.error()) {
    case httplib::Error::Connection: {
      // cpp-httplib reports a connect timeout as a plain connection error; probing again
      // would only wait as long a second time.
      if (elapsed + std::chrono::milliseconds(100) >= options.timeout) {
        return std::unexpected(TransportError{"connect timed out after " + secondsText(options.timeout)});
      }
      std::string why = diagnoseConnect(options.url.host, options.url.port, options.timeout);
      return std::unexpected(TransportError{why.empty() ? "connection failed" : why});
    }
    case httplib::Error::ConnectionTimeout:
      return std::unexpected(TransportError{"connect timed out after " + secondsText(options.timeout)});
    case httplib::Error::Read:
      // A read error at the deadline is the box not answering; earlier it closed on us.
      if (elapsed + std::chrono::milliseconds(100) >= options.timeout) {
        return std::unexpected(TransportError{"no response within " + secondsText(options.timeout) +
                                              " (raise --timeout?)"});
      }
      return std::unexpected(TransportError{"connection closed without a response"});
    case httplib::Error::Write:
      return std::unexpected(TransportError{"connection lost while sending the request"});
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification:
      return std::unexpected(TransportError{"TLS failure (" + httplib::to_string(result.error()) + ")"});
    default:
      return std::unexpected(TransportError{"request failed (" + httplib::to_string(result.error()) + ")"});
  }
}

}  // namespace

std::expected<Reply, TransportError> ApiClient::get(const std::string& path) {
  const auto started = std::chrono::steady_clock::now();
  return toReply(http_->Get(options_.url.basePath + path), options_, started);
}

std::expected<Reply, TransportError> ApiClient::put(const std::string& path, const std::string& jsonBody) {
  const auto started = std::chrono::steady_clock::now();
  return toReply(http_->Put(options_.url.basePath + path, jsonBody, "application/json"), options_, started);
}

std::expected<Reply, TransportError> ApiClient::del(const std::string& path) {
  const auto started = std::chrono::steady_clock::now();
  return toReply(http_->Delete(options_.url.basePath + path), options_, started);
}

std::string diagnoseConnect(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return "cannot resolve '" + host + "': " + ::gai_strerror(rc);
  }
  std::string why = "no address for '" + host + "'";
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    FdGuard sock{::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)};
    if (sock.fd < 0) {
      why = errnoText(errno);
      continue;
    }
    int err = 0;
    if (::connect(sock.fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{.fd = sock.fd, .events = POLLOUT, .revents = 0};
        const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (n == 0) {
          err = ETIMEDOUT;
        } else if (n < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof err;
          if (::getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err == 0) {
      ::freeaddrinfo(found);
      return "";
    }
    why = err == ETIMEDOUT ? "connect timed out after " + secondsText(timeout) : errnoText(err);
  }
  ::freeaddrinfo(found);
  return why;
}

}  // namespace ng::ngctl
