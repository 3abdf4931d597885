#include "control/kube/api_client.h"

#include <arpa/inet.h>
#include <signal.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <ctime>
#include <fstream>
#include <mutex>
#include <optional>
#include <vector>

namespace ng::kube {

// ---- LineFramer --------------------------------------------------------------------------

LineFramer::Result LineFramer::feed(std::string_view data, const std::function<bool(std::string_view)>& on_line) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + data.size() > max_line_) return Result::kTooLong;
      partial_.append(data);
      return Result::kMore;
    }
    std::string_view line;
    if (partial_.empty()) {
      line = data.substr(0, nl);  // the common case: a whole line inside one chunk, no copy
    } else {
      partial_.append(data.substr(0, nl));
      line = partial_;
    }
    if (line.size() > max_line_) return Result::kTooLong;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool go_on = on_line(line);
    partial_.clear();
    data.remove_prefix(nl + 1);
    if (!go_on) return Result::kStopped;
  }
  return Result::kMore;
}

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string opensslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::expected<std::vector<X509Ptr>, std::string> parseCertificates(const std::string& pem, const char* what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected(std::string(what) + ": out of memory");
  std::vector<X509Ptr> certs;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the loop ends on "no start line"
  if (certs.empty()) return std::unexpected(std::string(what) + ": no PEM certificate found");
  return certs;
}

struct ServerUrl {
  bool tls = false;
  std::string host;    // without brackets
  int port = 0;
  std::string prefix;  // path prefix without trailing '/', e.g. "/k8s/clusters/c-1"
};

std::expected<ServerUrl, std::string> parseServer(const std::string& server) {
  ServerUrl url;
  std::string_view rest(server);
  if (rest.starts_with("https://")) {
    url.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return std::unexpected("server \"" + server + "\": not an http:// or https:// URL");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    url.prefix = std::string(rest.substr(slash));
    while (!url.prefix.empty() && url.prefix.back() == '/') url.prefix.pop_back();
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::unexpected("server \"" + server + "\": unterminated [IPv6]");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return std::unexpected("server \"" + server + "\": junk after [IPv6]");
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (url.host.empty()) return std::unexpected("server \"" + server + "\": no host");
  url.port = url.tls ? 443 : 80;
  if (!port.empty()) {
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), url.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || url.port < 1 || url.port > 65535) {
      return std::unexpected("server \"" + server + "\": bad port");
    }
  }
  return url;
}

// The token file's first line, whitespace trimmed.
std::expected<std::string, std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected("token file " + path + ": cannot read");
  std::string line;
  std::getline(in, line);
  const size_t b = line.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::unexpected("token file " + path + ": empty");
  const size_t e = line.find_last_not_of(" \t\r\n");
  return line.substr(b, e - b + 1);
}

// Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3).
std::chrono::seconds parseRetryAfter(const std::string& value) {
  if (value.empty()) return std::chrono::seconds{0};
  long long seconds = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && ptr == value.data() + value.size()) {
    return std::chrono::seconds{std::clamp<long long>(seconds, 0, 3600)};
  }
  std::tm tm{};
  if (strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
    const long long delta = static_cast<long long>(timegm(&tm)) - static_cast<long long>(std::time(nullptr));
    return std::chrono::seconds{std::clamp<long long>(delta, 0, 3600)};
  }
  return std::chrono::seconds{0};
}

const char* errorText(httplib::Error e) {
  switch (e) {
    case httplib::Error::Success: return "success";
    case httplib::Error::Connection: return "connection failed (refused, unreachable or timed out)";
    case httplib::Error::BindIPAddress: return "cannot bind the local address";
    case httplib::Error::Read: return "read failed (connection closed, reset or timed out)";
    case httplib::Error::Write: return "write failed";
    case httplib::Error::ExceedRedirectCount: return "too many redirects";
    case httplib::Error::Canceled: return "cancelled";
    case httplib::Error::SSLConnection: return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts: return "TLS: cannot load certificates";
    case httplib::Error::SSLServerVerification: return "TLS: server certificate verification failed";
    case httplib::Error::UnsupportedMultipartBoundaryChars: return "bad multipart boundary";
    case httplib::Error::Compression: return "decompression failed";
    case httplib::Error::ConnectionTimeout: return "connect timed out";
    default: return "unknown transport error";
  }
}

}  // namespace

// ---- HttpApiClient -----------------------------------------------------------------------

struct HttpApiClient::Impl {
  // One request in flight: cancel() finds its client here.
  struct Call {
    std::shared_ptr<httplib::ClientImpl> client;
    bool stream = false;
    std::atomic<bool> cancelled{false};
  };

  KubeAccess access;
  Options options;
  ServerUrl url;
  STACK_OF(X509)* trusted = nullptr;  // the CA bundle: the only roots a server chain may end in
  X509Ptr client_cert;
  PkeyPtr client_key;

  std::mutex mutex;  // guards everything below
  std::vector<std::shared_ptr<httplib::ClientImpl>> idle;
  std::vector<std::shared_ptr<Call>> in_flight;
  bool cancel_next_stream = false;
  std::string token;
  bool token_loaded = false;
  bool token_error_logged = false;
  std::chrono::steady_clock::time_point token_read_at{};
  std::atomic<uint64_t> token_reads{0};

  ~Impl() {
    if (trusted != nullptr) sk_X509_pop_free(trusted, X509_free);
  }

  // Replaces OpenSSL's chain verification for our connections: the chain must end in
  // one of `trusted` (never the system store, which httplib would otherwise load) and
  // the leaf must name the host we dialled. The result lands in SSL_get_verify_result(),
  // which httplib checks after the handshake.
  static int verifyChain(X509_STORE_CTX* ctx, void* arg) {
    const auto* self = static_cast<const Impl*>(arg);
    X509_STORE_CTX_set0_trusted_stack(ctx, self->trusted);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
    unsigned char addr[16];
    const bool is_ip = inet_pton(AF_INET, self->url.host.c_str(), addr) == 1 ||
                       inet_pton(AF_INET6, self->url.host.c_str(), addr) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, self->url.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, self->url.host.c_str(), self->url.host.size());
    }
    return X509_verify_cert(ctx);
  }

  std::shared_ptr<httplib::ClientImpl> makeClient() {
    std::shared_ptr<httplib::ClientImpl> client;
    if (url.tls) {
      auto ssl = client_cert ? std::make_shared<httplib::SSLClient>(url.host, url.port, client_cert.get(), client_key.get())
                             : std::make_shared<httplib::SSLClient>(url.host, url.port);
      if (!ssl->is_valid() || ssl->ssl_context() == nullptr) return nullptr;
      SSL_CTX* ctx = ssl->ssl_context();
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_cert_verify_callback(ctx, &Impl::verifyChain, this);
      ssl->enable_server_certificate_verification(true);
      client = std::move(ssl);
    } else {
      client = std::make_shared<httplib::ClientImpl>(url.host, url.port);
    }
    client->set_connection_timeout(options.connect_timeout);
    client->set_write_timeout(options.write_timeout);
    client->set_read_timeout(options.read_timeout);
    client->set_keep_alive(true);
    client->set_follow_location(false);
    client->set_tcp_nodelay(true);
    return client;
  }

  // Registers a call; nullptr when it is a stream cancelled before it started.
  std::shared_ptr<Call> checkout(bool stream) {
    auto call = std::make_shared<Call>();
    call->stream = stream;
    {
      std::lock_guard lock(mutex);
      if (stream && cancel_next_stream) {
        cancel_next_stream = false;
        return nullptr;
      }
      if (!idle.empty()) {
        call->client = std::move(idle.back());
        idle.pop_back();
      }
      in_flight.push_back(call);
    }
    if (!call->client) call->client = makeClient();
    if (call->client) {
      call->client->set_read_timeout(stream ? options.stream_read_timeout : options.read_timeout);
    }
    return call;
  }

  void checkin(const std::shared_ptr<Call>& call, bool reusable) {
    std::lock_guard lock(mutex);
    std::erase(in_flight, call);
    if (reusable && !call->cancelled.load() && call->client && idle.size() < options.max_idle_connections) {
      idle.push_back(std::move(call->client));
    }
  }

  void cancel() {
    std::vector<std::shared_ptr<httplib::ClientImpl>> clients;
    {
      std::lock_guard lock(mutex);
      bool stream_in_flight = false;
      for (const auto& call : in_flight) {
        call->cancelled.store(true);
        stream_in_flight = stream_in_flight || call->stream;
        if (call->client) clients.push_back(call->client);
      }
      if (!stream_in_flight) cancel_next_stream = true;
    }
    // Outside the lock: stop() waits for a connect in progress (httplib holds its socket
    // mutex while connecting), then shuts the socket down so blocked reads return.
    for (const auto& client : clients) client->stop();
  }

  // The bearer token to send now; `force` re-reads the file (after a 401).
  std::string currentToken(bool force) {
    std::lock_guard lock(mutex);
    if (access.token_file.empty()) return access.token;
    const auto now = std::chrono::steady_clock::now();
    if (force || !token_loaded || now - token_read_at >= options.token_refresh) {
      token_read_at = now;
      token_reads.fetch_add(1, std::memory_order_relaxed);
      auto t = readToken(access.token_file);
      if (t) {
        if (token_loaded && *t != token) spdlog::info("kube: bearer token in {} changed", access.token_file);
        token = std::move(*t);
        token_loaded = true;
        token_error_logged = false;
      } else if (!token_error_logged) {
        spdlog::warn("kube: {} (keeping the token read before)", t.error());
        token_error_logged = true;
      }
    }
    return token;
  }

  httplib::Headers headers(const std::string& bearer, bool stream) const {
    httplib::Headers h{{"Accept", "application/json"}, {"User-Agent", options.user_agent}};
    if (!bearer.empty()) h.emplace("Authorization", "Bearer " + bearer);
    // A watch must reach us as it is written: a compressing peer would hold events back.
    if (stream) h.emplace("Accept-Encoding", "identity");
    return h;
  }

  std::string transportError(httplib::Error e, const Call& call) const {
    if (call.cancelled.load()) return "cancelled";
    std::string text = errorText(e);
    if (e == httplib::Error::SSLServerVerification && call.client) {
      if (auto* ssl = dynamic_cast<httplib::SSLClient*>(call.client.get())) {
        const long v = ssl->get_openssl_verify_result();
        if (v != X509_V_OK) text += std::string(": ") + X509_verify_cert_error_string(v);
      }
    }
    return text + " (" + access.server + ")";
  }

  // Runs `fn` with a checked-out connection and the current token; once more after a
  // 401 when the token comes from a file (it may have rotated).
  template <typename Fn>
  Response perform(bool stream, Fn&& fn) {
    for (int attempt = 0;; ++attempt) {
      const std::string bearer = currentToken(attempt > 0);
      const std::shared_ptr<Call> call = checkout(stream);
      if (!call) return Response{.status = 0, .error = "cancelled"};
      if (!call->client) {
        checkin(call, false);
        return Response{.status = 0, .error = "cannot set up a TLS client: " + opensslError()};
      }
      Response r = fn(*call, headers(bearer, stream));
      checkin(call, r.status != 0 && r.error.empty());
      if (r.status == 401 && attempt == 0 && !access.token_file.empty() && !call->cancelled.load()) {
        spdlog::info("kube: 401 from {}, re-reading {} and retrying once", access.server, access.token_file);
        continue;
      }
      return r;
    }
  }

  Response finish(httplib::Result& result, const Call& call) const {
    if (!result || call.cancelled.load()) {
      return Response{.status = 0, .error = transportError(result.error(), call)};
    }
    return Response{.status = result->status,
                    .body = std::move(result->body),
                    .retry_after = parseRetryAfter(result->get_header_value("Retry-After"))};
  }
};

HttpApiClient::HttpApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpApiClient::~HttpApiClient() = default;

std::expected<std::unique_ptr<HttpApiClient>, std::string> HttpApiClient::create(KubeAccess access, Options options) {
  // A write into a connection the server has closed (a keep-alive connection it timed
  // out, a watch it ended) must come back as EPIPE, not kill the process: cpp-httplib
  // 0.11 sends without MSG_NOSIGNAL and OpenSSL writes with plain write().
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      std::signal(SIGPIPE, SIG_IGN);
    }
  });
  auto url = parseServer(access.server);
  if (!url) return std::unexpected(url.error());
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(*url);
  if (!impl->url.tls) {
    if (!access.token.empty() || !access.token_file.empty()) {
      return std::unexpected("server " + access.server +
                             ": refusing to send a bearer token over plain http (use https)");
    }
    if (!access.client_cert_pem.empty()) {
      return std::unexpected("server " + access.server + ": a client certificate needs https");
    }
  } else {
    if (access.ca_pem.empty()) return std::unexpected("server " + access.server + ": https needs a CA bundle");
    auto cas = parseCertificates(access.ca_pem, "CA bundle");
    if (!cas) return std::unexpected(cas.error());
    impl->trusted = sk_X509_new_null();
    for (X509Ptr& c : *cas) sk_X509_push(impl->trusted, c.release());
    if (!access.client_cert_pem.empty() || !access.client_key_pem.empty()) {
      if (access.client_cert_pem.empty() || access.client_key_pem.empty()) {
        return std::unexpected("client certificate and key must be given together");
      }
      auto certs = parseCertificates(access.client_cert_pem, "client certificate");
      if (!certs) return std::unexpected(certs.error());
      BioPtr bio(BIO_new_mem_buf(access.client_key_pem.data(), static_cast<int>(access.client_key_pem.size())));
      PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
      if (!key) return std::unexpected("client key: not a PEM private key (" + opensslError() + ")");
      if (X509_check_private_key(certs->front().get(), key.get()) != 1) {
        ERR_clear_error();
        return std::unexpected("client key does not match the client certificate");
      }
      impl->client_cert = std::move(certs->front());
      impl->client_key = std::move(key);
    }
  }
  if (!access.token_file.empty()) {
    auto t = readToken(access.token_file);
    if (!t) return std::unexpected(t.error());
  }
  impl->access = std::move(access);
  impl->options = options;
  // Proves the TLS setup works (key accepted by OpenSSL) and warms the pool.
  auto first = impl->makeClient();
  if (!first) return std::unexpected("cannot set up a TLS client: " + opensslError());
  impl->idle.push_back(std::move(first));
  return std::unique_ptr<HttpApiClient>(new HttpApiClient(std::move(impl)));
}

uint64_t HttpApiClient::tokenReads() const noexcept { return impl_->token_reads.load(std::memory_order_relaxed); }

ApiClient::Response HttpApiClient::get(const std::string& target) {
  const std::string path = impl_->url.prefix + target;
  return impl_->perform(false, [&](Impl::Call& call, const httplib::Headers& h) {
    httplib::Result r = call.client->Get(path, h);
    return impl_->finish(r, call);
  });
}

ApiClient::Response HttpApiClient::patch(const std::string& target, const std::string& body,
                                         const std::string& content_type) {
  const std::string path = impl_->url.prefix + target;
  return impl_->perform(false, [&](Impl::Call& call, const httplib::Headers& h) {
    httplib::Result r = call.client->Patch(path, h, body, content_type);
    return impl_->finish(r, call);
  });
}

ApiClient::Response HttpApiClient::post(const std::string& target, const std::string& body) {
  const std::string path = impl_->url.prefix + target;
  return impl_->perform(false, [&](Impl::Call& call, const httplib::Headers& h) {
    httplib::Result r = call.client->Post(path, h, body, "application/json");
    return impl_->finish(r, call);
  });
}

ApiClient::Response HttpApiClient::stream(const std::string& target,
                                          const std::function<bool(std::string_view)>& on_line) {
  const std::string path = impl_->url.prefix + target;
  return impl_->perform(true, [&](Impl::Call& call, const httplib::Headers& h) {
    Response out;
    LineFramer framer(impl_->options.max_line);
    bool stopped = false;
    bool too_long = false;
    bool ok_status = false;
    httplib::Result r = call.client->Get(
        path, h,
        [&](const httplib::Response& head) {
          out.status = head.status;
          out.retry_after = parseRetryAfter(head.get_header_value("Retry-After"));
          ok_status = head.status >= 200 && head.status < 300;
          return !call.cancelled.load();
        },
        [&](const char* data, size_t len) {
          if (call.cancelled.load()) return false;
          if (!ok_status) {
            out.body.append(data, std::min(len, kMaxErrorBody - std::min(kMaxErrorBody, out.body.size())));
            return true;
          }
          switch (framer.feed(std::string_view(data, len), on_line)) {
            case LineFramer::Result::kMore: return true;
            case LineFramer::Result::kStopped: stopped = true; return false;
            case LineFramer::Result::kTooLong: too_long = true; return false;
          }
          return false;
        });
    if (out.status == 0) {
      out.error = impl_->transportError(r.error(), call);
    } else if (call.cancelled.load()) {
      out.error = "cancelled";
    } else if (too_long) {
      out.error = "watch event longer than " + std::to_string(impl_->options.max_line) + " bytes";
    } else if (!r && !stopped) {
      out.error = std::string("stream cut: ") + errorText(r.error());
      if (framer.pending() > 0) out.error += " (" + std::to_string(framer.pending()) + " bytes of a partial line dropped)";
    }
    return out;
  });
}

void HttpApiClient::cancel() { impl_->cancel(); }

}  // namespace ng::kube
