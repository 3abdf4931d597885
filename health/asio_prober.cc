#include "health/asio_prober.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include <asio.hpp>
#include <asio/ssl.hpp>

namespace ng::health {
namespace {

using asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket&>;

enum class Phase : uint8_t { kConnect, kTls, kRequest, kResponse };

const char* phaseName(Phase phase) noexcept {
  switch (phase) {
    case Phase::kConnect: return "connect";
    case Phase::kTls: return "TLS handshake";
    case Phase::kRequest: return "sending request";
    case Phase::kResponse: return "waiting for response";
  }
  return "?";
}

ProbeOutcome connectFailure(const std::error_code& ec) {
  if (ec == asio::error::connection_refused)
    return ProbeOutcome::fail(FailReason::kRefused, "connection refused");
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable)
    return ProbeOutcome::fail(FailReason::kUnreachable, ec.message());
  if (ec == asio::error::timed_out) return ProbeOutcome::fail(FailReason::kTimeout, ec.message());
  return ProbeOutcome::fail(FailReason::kError, "connect: " + ec.message());
}

// One probe in flight. Every handler holds a shared_ptr to it, so it lives exactly as
// long as some operation is pending; finish() runs once and closes the socket, which
// makes the remaining operations complete with operation_aborted and let go.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, ProbeKind kind, size_t limit,
          std::function<void(ProbeOutcome)> done)
      : socket_(io), deadline_(io), kind_(kind), limit_(limit), done_(std::move(done)) {}

  void start(const tcp::endpoint& target, const std::optional<asio::ip::address>& source,
             std::chrono::milliseconds timeout, asio::ssl::context* tls, const ProbeSpec& spec) {
    timeout_ms_ = timeout.count();
    std::error_code ec;
    socket_.open(target.protocol(), ec);
    if (!ec) {
      // RST instead of FIN on close: the result is known by then, and at thousands of
      // probes a second an orderly close would leave a TIME_WAIT entry per probe here.
      socket_.set_option(asio::socket_base::linger(true, 0), ec);
    }
    if (!ec && source && source->is_v4() == target.address().is_v4()) {
      // Pick the source port at connect() time, per destination, instead of reserving
      // one per bind(): bind(port 0) would cap probes in flight at the ephemeral range.
      const int one = 1;
      ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one);
      socket_.bind(tcp::endpoint(*source, 0), ec);
    }
    if (ec) return fail(FailReason::kError, "socket: " + ec.message());
    if (kind_ != ProbeKind::kTcp) request_ = httpRequest(spec.path, spec.hostPort());
    if (tls) {
      tls_.emplace(socket_, *tls);
      if (spec.tls_verify) {
        // The certificate must name the node's IP (no SNI: RFC 6066 forbids literals).
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls_->native_handle()),
                                      spec.address.c_str());
      }
    }
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec || self->finished_) return;
      self->finish(ProbeOutcome::fail(
          FailReason::kTimeout, "timeout after " + std::to_string(self->timeout_ms_) + " ms (" +
                                    phaseName(self->phase_) + ")"));
    });
    target_ = target;
    socket_.non_blocking(true, ec);
    if (ec) return fail(FailReason::kError, "socket: " + ec.message());
    // Connect by hand instead of socket::async_connect: asio confirms completion with a
    // poll() and a getsockopt(); asking connect() again answers in one syscall.
    if (::connect(socket_.native_handle(), target_.data(), target_.size()) == 0) {
      return later([](Session& s) { s.connected(); });
    }
    if (errno != EINPROGRESS) {
      const std::error_code err(errno, asio::error::get_system_category());
      return later([err](Session& s) { s.finish(connectFailure(err)); });
    }
    awaitConnect();
  }

 private:
  // Continues on the loop: nothing found inside start() may reach `done` inside probe().
  template <class F>
  void later(F f) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), f = std::move(f)] {
      if (!self->finished_) f(*self);
    });
  }
  void fail(FailReason reason, std::string detail) {
    later([reason, detail = std::move(detail)](Session& s) {
      s.finish(ProbeOutcome::fail(reason, detail));
    });
  }

  // Writability says the handshake ended, not how; a second connect() tells: 0 (or
  // EISCONN) connected, EALREADY still going (a spurious wake-up), else the error.
  void awaitConnect() {
    socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](const std::error_code& ec) {
      if (self->finished_) return;
      if (ec) return self->finish(connectFailure(ec));
      const tcp::endpoint& target = self->target_;
      if (::connect(self->socket_.native_handle(), target.data(), target.size()) == 0 ||
          errno == EISCONN) {
        return self->connected();
      }
      if (errno == EALREADY || errno == EINPROGRESS) return self->awaitConnect();
      self->finish(connectFailure(std::error_code(errno, asio::error::get_system_category())));
    });
  }

  void connected() {
    if (kind_ == ProbeKind::kTcp) return finish(ProbeOutcome::ok("connected"));
    if (tls_) return handshake();
    sendRequest();
  }

  // Runs f on the byte stream: the TLS stream for HTTPS, the socket otherwise.
  template <class F>
  void withStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }

  void handshake() {
    phase_ = Phase::kTls;
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = shared_from_this()](const std::error_code& ec) {
                            if (self->finished_) return;
                            if (ec) {
                              return self->finish(
                                  ProbeOutcome::fail(FailReason::kTls, "TLS: " + ec.message()));
                            }
                            self->sendRequest();
                          });
  }

  void sendRequest() {
    phase_ = Phase::kRequest;
    size_t sent = 0;
    if (!tls_) {
      // A fresh connection has room for a ~100-byte request: send it now rather than
      // through an asynchronous write and one more trip around the loop.
      std::error_code ec;
      sent = socket_.send(asio::buffer(request_), 0, ec);
      if (ec && ec != asio::error::would_block) {
        return finish(ProbeOutcome::fail(FailReason::kError, "write: " + ec.message()));
      }
      if (sent == request_.size()) {
        phase_ = Phase::kResponse;
        return readMore();
      }
    }
    withStream([this, sent](auto& stream) {
      asio::async_write(stream, asio::buffer(request_) + sent,
                        [self = shared_from_this()](const std::error_code& ec, size_t) {
                          if (self->finished_) return;
                          if (ec) {
                            return self->finish(ProbeOutcome::fail(FailReason::kError,
                                                                   "write: " + ec.message()));
                          }
                          self->phase_ = Phase::kResponse;
                          self->readMore();
                        });
    });
  }

  void readMore() {
    // Read at most limit + 1 bytes in total: one byte past the limit is enough to know
    // the response is too big. Most answers are a few hundred bytes: start small.
    if (used_ == capacity_) {
      const size_t grown = std::min(std::max<size_t>(capacity_ * 2, 1024), limit_ + 1);
      auto bigger = std::make_unique_for_overwrite<char[]>(grown);
      std::copy_n(buffer_.get(), used_, bigger.get());
      buffer_ = std::move(bigger);
      capacity_ = grown;
    }
    withStream([this](auto& stream) {
      stream.async_read_some(
          asio::buffer(buffer_.get() + used_, capacity_ - used_),
          [self = shared_from_this()](const std::error_code& ec, size_t n) {
            if (self->finished_) return;
            self->used_ += n;
            // A peer closing without TLS close_notify is an ordinary end of the response
            // here: we asked for Connection: close and judge the bytes ourselves.
            const bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
            if (ec && !eof) {
              return self->finish(
                  ProbeOutcome::fail(FailReason::kError, "read: " + ec.message()));
            }
            const std::string_view bytes(self->buffer_.get(), self->used_);
            if (auto verdict = judgeHttpResponse(bytes, eof, self->limit_)) {
              return self->finish(std::move(*verdict));
            }
            self->readMore();
          });
    });
  }

  void finish(ProbeOutcome outcome) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    std::error_code ignored;
    socket_.close(ignored);  // aborts whatever is pending; linger 0 makes it an RST
    auto done = std::move(done_);
    done(std::move(outcome));
  }

  tcp::socket socket_;
  tcp::endpoint target_;
  std::optional<TlsStream> tls_;
  asio::steady_timer deadline_;
  ProbeKind kind_;
  Phase phase_ = Phase::kConnect;
  bool finished_ = false;
  size_t limit_;
  int64_t timeout_ms_ = 0;
  std::string request_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t used_ = 0;
  std::function<void(ProbeOutcome)> done_;
};

}  // namespace

struct AsioProber::Impl {
  asio::io_context& io;
  Options options;
  std::optional<asio::ip::address> source;
  // Made on first use: loading the system CA store is start-up work HTTP-only setups skip.
  std::unique_ptr<asio::ssl::context> tls_insecure;
  std::unique_ptr<asio::ssl::context> tls_verified;

  asio::ssl::context& tlsContext(bool verify) {
    auto& slot = verify ? tls_verified : tls_insecure;
    if (!slot) {
      slot = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      slot->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
      if (verify) {
        std::error_code ec;
        slot->set_default_verify_paths(ec);  // no CA store: every verified probe fails kTls
        slot->set_verify_mode(asio::ssl::verify_peer);
      } else {
        slot->set_verify_mode(asio::ssl::verify_none);
      }
    }
    return *slot;
  }
};

AsioProber::AsioProber(asio::io_context& io, Options options)
    : impl_(std::make_unique<Impl>(Impl{.io = io, .options = std::move(options)})) {
  if (!impl_->options.source_address.empty()) {
    std::error_code ec;
    impl_->source = asio::ip::make_address(impl_->options.source_address, ec);
    if (ec) {
      throw std::invalid_argument("health: source address '" + impl_->options.source_address +
                                  "' is not an IP address");
    }
  }
}

AsioProber::~AsioProber() = default;

void AsioProber::probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
                       std::function<void(ProbeOutcome)> done) {
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(spec.address, ec);
  if (ec) {
    asio::post(impl_->io, [done = std::move(done), what = spec.address] {
      done(ProbeOutcome::fail(FailReason::kError, "invalid address '" + what + "'"));
    });
    return;
  }
  asio::ssl::context* tls =
      spec.kind == ProbeKind::kHttps ? &impl_->tlsContext(spec.tls_verify) : nullptr;
  auto session = std::make_shared<Session>(impl_->io, spec.kind, impl_->options.max_response_bytes,
                                           std::move(done));
  session->start(tcp::endpoint(address, spec.port), impl_->source, timeout, tls, spec);
}

}  // namespace ng::health
