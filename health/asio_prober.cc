#include "health/asio_prober.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <string_view>
#include <unordered_map>
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

// How a kept connection the server has let go of shows up: end of stream, reset, or a
// write into a connection the peer already closed.
bool peerClosed(const std::error_code& ec) noexcept {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

class Probe;

// One TCP connection (plus its TLS session for HTTPS) to one target. A probe in flight
// owns its connection; an idle kept one is owned by its target's slot in the pool and
// has nothing pending on the loop: it costs no wake-ups and no system calls. A server
// closing it meanwhile is noticed by the next probe (see Probe::retryIfStale()).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(asio::io_context& io) : socket(io) {}

  // Plain HTTP, busy: waits for the socket to become readable, once at a time, and then
  // lets the probe read (one non-blocking recv()). Used when the answer was not there yet
  // when the probe looked (see Shared::collectLater()).
  void watch();

  void close() noexcept {
    std::error_code ignored;
    socket.close(ignored);  // aborts whatever is pending; linger 0 makes it an RST
  }

  tcp::socket socket;
  std::optional<TlsStream> tls;
  std::string request;  // the same GET for every probe of the target
  std::unique_ptr<char[]> buffer;
  size_t capacity = 0;
  size_t used = 0;        // bytes of the current response read so far
  uint64_t answered = 0;  // complete responses read on it; > 0: a probe on it is a reuse
  bool busy = false;      // a probe owns it
  bool watching = false;
  std::weak_ptr<Probe> probe;  // the probe that owns it, while busy
};

// Where one HTTP(S) target's kept connection lives between probes. A probe holds its
// target's slot from start to finish: one hash lookup per probe.
struct Slot {
  std::shared_ptr<Connection> conn;  // the kept one (idle or busy), or the last one tried
  bool forgotten = false;            // taken out of the pool: keep nothing in it any more
};

struct ProbeSpecHash {
  size_t operator()(const ProbeSpec& p) const noexcept {
    size_t h = std::hash<std::string_view>{}(p.address);
    h = h * 31 + std::hash<std::string_view>{}(p.path);
    const size_t rest = size_t{p.port} << 9 | size_t{static_cast<uint8_t>(p.kind)} << 1;
    return h * 31 + (rest | p.tls_verify);
  }
};

// What the prober and its probes share. Probes hold it too: a probe completing after the
// prober is gone still finds its pool and TLS contexts.
struct Shared : std::enable_shared_from_this<Shared> {
  explicit Shared(asio::io_context& context, AsioProber::Options opts)
      : io(context), options(std::move(opts)), collect(context) {}

  asio::io_context& io;
  AsioProber::Options options;
  std::optional<asio::ip::address> source;
  // Made on first use: loading the system CA store is start-up work HTTP-only setups skip.
  std::unique_ptr<asio::ssl::context> tls_insecure;
  std::unique_ptr<asio::ssl::context> tls_verified;
  std::unordered_map<ProbeSpec, std::shared_ptr<Slot>, ProbeSpecHash> pool;

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

  // The slot of `spec`, made on its first probe.
  std::shared_ptr<Slot> slotOf(const ProbeSpec& spec) {
    auto& slot = pool[spec];
    if (!slot) slot = std::make_shared<Slot>();
    return slot;
  }

  // Plain HTTP: a request was sent; read its answer after kCollectDelay, together with
  // the answers to every other request sent about then. The engine starts probes in
  // batches, and a healthy node answers within a millisecond, so one timer wake-up reads
  // a whole batch with one recv() each. Waiting for readability per socket instead would
  // cost an epoll_ctl() per probe (asio re-arms its one-shot wait) and a wake-up per
  // answer. An answer not there yet falls back to that wait (Connection::watch()).
  void collectLater(std::shared_ptr<Probe> probe);
  void collectDue();
  void armCollect(std::chrono::steady_clock::time_point when);

  static constexpr auto kCollectDelay = std::chrono::milliseconds(2);
  asio::steady_timer collect;
  bool collect_armed = false;
  // Requests sent and when to read their answers, oldest first.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<Probe>>> awaiting;
};

// One probe in flight. Every handler holds a shared_ptr to it, so it lives exactly as
// long as some operation is pending; finish() runs once, keeps or closes the connection,
// and the remaining operations complete with operation_aborted and let go.
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  Probe(std::shared_ptr<Shared> shared, const ProbeSpec& spec, const tcp::endpoint& target,
        std::chrono::milliseconds timeout, std::function<void(ProbeOutcome)> done)
      : shared_(std::move(shared)),
        spec_(spec),
        target_(target),
        deadline_(shared_->io),
        timeout_ms_(timeout.count()),
        done_(std::move(done)) {}

  void start(std::chrono::milliseconds timeout) {
    starting_ = true;
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec || self->finished_) return;
      // A verdict already known (the rest of the body was still arriving) stands; the
      // connection goes either way.
      if (self->verdict_) return self->finish(std::move(*self->verdict_), /*keep=*/false);
      self->finish(ProbeOutcome::fail(FailReason::kTimeout,
                                      "timeout after " + std::to_string(self->timeout_ms_) +
                                          " ms (" + phaseName(self->phase_) + ")"),
                   false);
    });
    std::shared_ptr<Connection> kept;
    if (reusable()) {
      slot_ = shared_->slotOf(spec_);
      kept = slot_->conn;
      if (kept && (kept->busy || !kept->socket.is_open())) kept = nullptr;
    }
    if (kept) {
      use(std::move(kept));
      sendRequest();
    } else {
      connectFresh();
    }
    starting_ = false;
  }

  // Plain HTTP: time to read the answer (Shared::collectDue()), or the connection
  // became readable while this probe waits for it (Connection::watch()).
  void onReadable() {
    if (finished_ || phase_ != Phase::kResponse) return;  // timed out meanwhile
    Connection& c = *conn_;
    if (!reserve()) return;
    std::error_code ec;
    const size_t n =
        c.socket.receive(asio::buffer(c.buffer.get() + c.used, c.capacity - c.used), 0, ec);
    if (ec == asio::error::would_block) return c.watch();  // not there yet
    c.used += n;
    const bool eof = ec == asio::error::eof;
    if (ec && !eof) return readFailed(ec);
    if (eof && retryIfStale(ec)) return;
    if (!evaluate(eof)) c.watch();
  }

 private:
  // HTTP(S) with reuse on: connections may be kept and taken from the pool.
  bool reusable() const noexcept {
    return shared_->options.reuse_connections && spec_.kind != ProbeKind::kTcp;
  }

  void use(std::shared_ptr<Connection> conn) {
    conn->busy = true;
    conn->used = 0;
    conn->probe = weak_from_this();
    conn_ = std::move(conn);
  }

  void connectFresh() {
    phase_ = Phase::kConnect;
    auto conn = std::make_shared<Connection>(shared_->io);
    use(conn);
    if (slot_ && (!slot_->conn || !slot_->conn->socket.is_open())) {
      // The fresh connection becomes the kept one unless another is still open (two
      // probes of one spec at once, which the engine never does): that one stays, and
      // this one is closed after its probe.
      slot_->conn = conn;
    }
    tcp::socket& socket = conn->socket;
    std::error_code ec;
    socket.open(target_.protocol(), ec);
    if (!ec) {
      // RST instead of FIN on close: we close once the result is known (every TCP probe,
      // every HTTP probe without reuse, and kept connections that failed or were told to
      // close), and at thousands of probes a second an orderly close would leave a
      // TIME_WAIT entry per probe here.
      socket.set_option(asio::socket_base::linger(true, 0), ec);
    }
    const auto& source = shared_->source;
    if (!ec && source && source->is_v4() == target_.address().is_v4()) {
      // Pick the source port at connect() time, per destination, instead of reserving
      // one per bind(): bind(port 0) would cap probes in flight at the ephemeral range.
      const int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket.bind(tcp::endpoint(*source, 0), ec);
    }
    if (!ec) socket.non_blocking(true, ec);
    if (ec) return finish(ProbeOutcome::fail(FailReason::kError, "socket: " + ec.message()), false);
    if (spec_.kind != ProbeKind::kTcp) {
      conn->request = httpRequest(spec_.path, spec_.hostPort(),
                                  reusable() ? HttpConnection::kKeepAlive : HttpConnection::kClose);
    }
    if (spec_.kind == ProbeKind::kHttps) {
      conn->tls.emplace(socket, shared_->tlsContext(spec_.tls_verify));
      if (spec_.tls_verify) {
        // The certificate must name the node's IP (no SNI: RFC 6066 forbids literals).
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->tls->native_handle()),
                                      spec_.address.c_str());
      }
    }
    // Connect by hand instead of socket::async_connect: asio confirms completion with a
    // poll() and a getsockopt(); asking connect() again answers in one syscall.
    if (::connect(socket.native_handle(), target_.data(), target_.size()) == 0) return connected();
    if (errno != EINPROGRESS) {
      return finish(connectFailure(std::error_code(errno, asio::error::get_system_category())),
                    false);
    }
    awaitConnect();
  }

  // Writability says the handshake ended, not how; a second connect() tells: 0 (or
  // EISCONN) connected, EALREADY still going (a spurious wake-up), else the error.
  void awaitConnect() {
    conn_->socket.async_wait(tcp::socket::wait_write, [self = shared_from_this(),
                                                       conn = conn_](const std::error_code& ec) {
      if (self->finished_ || self->conn_ != conn) return;
      if (ec) return self->finish(connectFailure(ec), false);
      const tcp::endpoint& target = self->target_;
      if (::connect(conn->socket.native_handle(), target.data(), target.size()) == 0 ||
          errno == EISCONN) {
        return self->connected();
      }
      if (errno == EALREADY || errno == EINPROGRESS) return self->awaitConnect();
      self->finish(connectFailure(std::error_code(errno, asio::error::get_system_category())),
                   false);
    });
  }

  void connected() {
    if (spec_.kind == ProbeKind::kTcp) return finish(ProbeOutcome::ok("connected"), false);
    if (conn_->tls) return handshake();
    sendRequest();
  }

  void handshake() {
    phase_ = Phase::kTls;
    conn_->tls->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), conn = conn_](const std::error_code& ec) {
          if (self->finished_ || self->conn_ != conn) return;
          if (ec) {
            return self->finish(ProbeOutcome::fail(FailReason::kTls, "TLS: " + ec.message()),
                                false);
          }
          self->sendRequest();
        });
  }

  void sendRequest() {
    phase_ = Phase::kRequest;
    Connection& c = *conn_;
    if (c.tls) {
      auto wrote = [self = shared_from_this(), conn = conn_](const std::error_code& ec, size_t) {
        if (self->finished_ || self->conn_ != conn) return;
        if (ec) return self->writeFailed(ec);
        self->phase_ = Phase::kResponse;
        self->readTls();
      };
      asio::async_write(*c.tls, asio::buffer(c.request), std::move(wrote));
      return;
    }
    // A fresh or idle connection has room for a ~100-byte request: send it now rather
    // than through an asynchronous write and one more trip around the loop.
    std::error_code ec;
    const size_t sent = c.socket.send(asio::buffer(c.request), 0, ec);
    if (ec && ec != asio::error::would_block) return writeFailed(ec);
    if (sent == c.request.size()) return awaitAnswer();
    asio::async_write(c.socket, asio::buffer(c.request) + sent,
                      [self = shared_from_this(), conn = conn_](const std::error_code& ec, size_t) {
                        if (self->finished_ || self->conn_ != conn) return;
                        if (ec) return self->writeFailed(ec);
                        self->awaitAnswer();
                      });
  }

  void awaitAnswer() {
    phase_ = Phase::kResponse;
    // A timeout this short would expire before the batch is read: wait for the socket.
    if (timeout_ms_ < 4 * Shared::kCollectDelay.count()) return conn_->watch();
    shared_->collectLater(shared_from_this());
  }

  void writeFailed(const std::error_code& ec) {
    if (retryIfStale(ec)) return;
    finish(ProbeOutcome::fail(FailReason::kError, "write: " + ec.message()), false);
  }

  void readFailed(const std::error_code& ec) {
    if (retryIfStale(ec)) return;
    // A verdict already known stands (a reset while the rest of the body was coming).
    if (verdict_) return finish(std::move(*verdict_), false);
    finish(ProbeOutcome::fail(FailReason::kError, "read: " + ec.message()), false);
  }

  // A kept connection the server closed or reset before answering (it restarted, or its
  // idle timeout raced our request) is not the target failing: try once more on a fresh
  // connection, under the same deadline. A fresh connection failing is the answer.
  bool retryIfStale(const std::error_code& ec) {
    if (retried_ || conn_->answered == 0 || conn_->used != 0 || !peerClosed(ec)) return false;
    retried_ = true;
    drop();
    connectFresh();
    return true;
  }

  void drop() {
    auto conn = std::move(conn_);
    conn->probe.reset();
    conn->busy = false;
    conn->close();
  }

  // Makes room for the next read: at most limit + 1 bytes in total, one byte past the
  // limit is enough to know the response is too big. Most answers are a few hundred
  // bytes: start small. False when the buffer is full (finished already).
  bool reserve() {
    Connection& c = *conn_;
    const size_t limit = shared_->options.max_response_bytes;
    if (c.used < c.capacity) return true;
    if (c.capacity > limit) {  // judged too big already; only reached without a verdict
      finish(verdict_.value_or(ProbeOutcome::fail(FailReason::kBadResponse, "bad response")),
             false);
      return false;
    }
    const size_t grown = std::min(std::max<size_t>(c.capacity * 2, 1024), limit + 1);
    auto bigger = std::make_unique_for_overwrite<char[]>(grown);
    std::copy_n(c.buffer.get(), c.used, bigger.get());
    c.buffer = std::move(bigger);
    c.capacity = grown;
    return true;
  }

  void readTls() {
    if (!reserve()) return;
    Connection& c = *conn_;
    c.tls->async_read_some(
        asio::buffer(c.buffer.get() + c.used, c.capacity - c.used),
        [self = shared_from_this(), conn = conn_](const std::error_code& ec, size_t n) {
          if (self->finished_ || self->conn_ != conn) return;
          conn->used += n;
          // A peer closing without TLS close_notify is an ordinary end of a response
          // that runs to the end of the connection: we judge the bytes ourselves.
          const bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
          if (ec && !eof) return self->readFailed(ec);
          if (eof && self->retryIfStale(ec)) return;
          if (!self->evaluate(eof)) self->readTls();
        });
  }

  // Judges the bytes read so far; true when the probe is finished. With a kept-alive
  // connection the verdict may come before the end of the response (a weight header
  // decides without the body): the rest is read too, so that the next response starts
  // on a clean connection, and the verdict is held until then (or until the deadline).
  bool evaluate(bool eof) {
    Connection& c = *conn_;
    const size_t limit = shared_->options.max_response_bytes;
    const std::string_view bytes(c.buffer.get(), c.used);
    if (!verdict_) verdict_ = judgeHttpResponse(bytes, eof, limit);
    if (!verdict_) return false;
    if (eof || !reusable() || verdict_->reason == FailReason::kBadResponse) {
      finish(std::move(*verdict_), false);
      return true;
    }
    const HttpResponseEnd end = findHttpResponseEnd(bytes);
    if (end.kind == HttpResponseEnd::kNeedMore && c.used <= limit) return false;
    // Kept only when the response ended exactly at the bytes read: anything after it
    // would be read as the start of the next answer.
    const bool keep = end.kind == HttpResponseEnd::kAt && end.keep_alive && end.length == c.used;
    finish(std::move(*verdict_), keep);
    return true;
  }

  void finish(ProbeOutcome outcome, bool keep) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    if (conn_) {
      auto conn = std::move(conn_);
      conn->probe.reset();
      conn->busy = false;
      if (keep && !slot_->forgotten && slot_->conn == conn) {
        ++conn->answered;  // idle now, owned by the slot until the next probe
      } else {
        conn->close();
        if (slot_ && slot_->conn == conn) slot_->conn.reset();
      }
    }
    auto done = std::move(done_);
    if (starting_) {
      // Decided inside probe() (a refused or failed connect on the spot): the contract
      // says `done` never runs there, so it runs on the loop.
      asio::post(shared_->io, [done = std::move(done), outcome = std::move(outcome)]() mutable {
        done(std::move(outcome));
      });
      return;
    }
    done(std::move(outcome));
  }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Slot> slot_;  // HTTP(S) with reuse only
  const ProbeSpec spec_;
  const tcp::endpoint target_;
  std::shared_ptr<Connection> conn_;
  asio::steady_timer deadline_;
  int64_t timeout_ms_;
  Phase phase_ = Phase::kConnect;
  bool starting_ = false;
  bool finished_ = false;
  bool retried_ = false;
  std::optional<ProbeOutcome> verdict_;  // decided, waiting for the end of the response
  std::function<void(ProbeOutcome)> done_;
};

void Connection::watch() {
  if (watching) return;
  watching = true;
  socket.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const std::error_code& ec) {
    self->watching = false;
    if (ec || !self->socket.is_open()) return;
    if (!self->busy) return self->close();  // bytes nobody asked for: not a clean connection
    if (auto probe = self->probe.lock()) probe->onReadable();
  });
}

void Shared::collectLater(std::shared_ptr<Probe> probe) {
  const auto due = std::chrono::steady_clock::now() + kCollectDelay;
  awaiting.emplace_back(due, std::move(probe));
  if (!collect_armed) armCollect(due);
}

void Shared::armCollect(std::chrono::steady_clock::time_point when) {
  collect_armed = true;
  collect.expires_at(when);  // cancels a wait still pending; its handler sees aborted
  collect.async_wait([weak = weak_from_this()](const std::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->collectDue();
  });
}

void Shared::collectDue() {
  collect_armed = false;
  // What comes due within half a delay is read now rather than after one more wake-up.
  const auto horizon = std::chrono::steady_clock::now() + kCollectDelay / 2;
  while (!awaiting.empty() && awaiting.front().first <= horizon) {
    auto probe = std::move(awaiting.front().second);
    awaiting.pop_front();
    probe->onReadable();  // may send (a stale retry) and so append here
  }
  if (!awaiting.empty()) armCollect(awaiting.front().first);
}

}  // namespace

struct AsioProber::Impl {
  std::shared_ptr<Shared> shared;
};

AsioProber::AsioProber(asio::io_context& io, Options options)
    : impl_(std::make_unique<Impl>(
          Impl{.shared = std::make_shared<Shared>(io, std::move(options))})) {
  Shared& s = *impl_->shared;
  if (!s.options.source_address.empty()) {
    std::error_code ec;
    s.source = asio::ip::make_address(s.options.source_address, ec);
    if (ec) {
      throw std::invalid_argument("health: source address '" + s.options.source_address +
                                  "' is not an IP address");
    }
  }
}

AsioProber::~AsioProber() {
  // Idle kept connections belong to the pool, not to anything pending on the loop:
  // close them now, while the io_context they were made on still exists. Probes in
  // flight own theirs and end with the loop.
  Shared& s = *impl_->shared;
  for (auto& [spec, slot] : s.pool) {
    slot->forgotten = true;
    if (slot->conn && !slot->conn->busy) slot->conn->close();
    slot->conn.reset();
  }
  s.pool.clear();
  s.awaiting.clear();
  s.collect.cancel();
}

void AsioProber::probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
                       std::function<void(ProbeOutcome)> done) {
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(spec.address, ec);
  if (ec) {
    asio::post(impl_->shared->io, [done = std::move(done), what = spec.address] {
      done(ProbeOutcome::fail(FailReason::kError, "invalid address '" + what + "'"));
    });
    return;
  }
  auto probe = std::make_shared<Probe>(impl_->shared, spec, tcp::endpoint(address, spec.port),
                                       timeout, std::move(done));
  probe->start(timeout);
}

void AsioProber::forget(const ProbeSpec& spec) {
  auto& pool = impl_->shared->pool;
  const auto it = pool.find(spec);
  if (it == pool.end()) return;
  Slot& slot = *it->second;
  slot.forgotten = true;  // a probe in flight closes its connection when done
  if (slot.conn && !slot.conn->busy) slot.conn->close();
  slot.conn.reset();
  pool.erase(it);
}

}  // namespace ng::health
