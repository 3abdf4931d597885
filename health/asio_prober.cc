#include "health/asio_prober.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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
using Clock = std::chrono::steady_clock;

// One TCP connection (plus its TLS session for HTTPS) to one target. A probe in flight
// owns its connection; an idle kept one is owned by its target's slot in the pool and
// has nothing pending on the loop: it costs no wake-ups and no system calls. A server
// closing it meanwhile is noticed by the next probe (see Probe::retryIfStale()).
//
// A kept plain HTTP connection is taken out of asio (shed(): its descriptor leaves the
// reactor's epoll set) once connected, and its probes send() and recv() on the bare
// descriptor. Registered, every answer arriving would wake the loop (10,000 times a
// second at 10k targets) though nobody waits for it: answers are read by the collect
// timer (Shared::collectLater()). It goes back into asio (adopt()) only to wait, for an
// answer that is late (watch()) or a request that did not fit, and out again when kept.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(asio::io_context& io) : socket(io) {}
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Plain HTTP, busy: waits for the socket to become readable, once at a time, and then
  // lets the probe read (one non-blocking recv()). Used when the answer was not there yet
  // when the probe looked (see Shared::collectLater()).
  void watch();

  void close() noexcept {
    if (fd >= 0) ::close(fd);  // linger 0 makes it an RST
    fd = -1;
    std::error_code ignored;
    socket.close(ignored);  // aborts whatever is pending; linger 0 makes it an RST
  }

  [[nodiscard]] bool isOpen() const noexcept { return fd >= 0 || socket.is_open(); }

  // The descriptor out of asio, into `fd` (one epoll_ctl). Cancels waits still pending.
  void shed() noexcept {
    if (fd >= 0 || !socket.is_open() || tls) return;
    std::error_code ec;
    const int released = socket.release(ec);
    if (!ec) fd = released;
  }
  // Back into asio, to wait on it (one epoll_ctl). False: it could not be registered
  // (then it is closed).
  bool adopt() noexcept {
    if (fd < 0) return socket.is_open();
    std::error_code ec;
    socket.assign(protocol, fd, ec);
    if (ec) {
      close();
      return false;
    }
    fd = -1;
    return true;
  }

  // Non-blocking send/recv on whichever holds the descriptor; errors as asio reports
  // them (would_block, eof for an orderly close).
  size_t send(asio::const_buffer b, std::error_code& ec) {
    if (fd < 0) return socket.send(b, 0, ec);
    const ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
    return result(n, ec);
  }
  size_t receive(asio::mutable_buffer b, std::error_code& ec) {
    if (fd < 0) return socket.receive(b, 0, ec);
    const ssize_t n = ::recv(fd, b.data(), b.size(), 0);
    if (n == 0 && b.size() != 0) {
      ec = asio::error::eof;
      return 0;
    }
    return result(n, ec);
  }

  tcp::socket socket;
  tcp protocol = tcp::v4();  // of `socket`, for adopt()
  int fd = -1;               // shed: the descriptor, not registered with asio
  std::optional<TlsStream> tls;
  std::string request;  // the same GET for every probe of the target

 private:
  static size_t result(ssize_t n, std::error_code& ec) {
    if (n >= 0) {
      ec.clear();
      return static_cast<size_t>(n);
    }
    ec = std::error_code(errno, asio::error::get_system_category());
    return 0;
  }

 public:
  std::unique_ptr<char[]> buffer;
  size_t capacity = 0;
  size_t used = 0;        // bytes of the current response read so far
  uint64_t answered = 0;  // complete responses read on it; > 0: a probe on it is a reuse
  bool busy = false;      // a probe owns it
  bool watching = false;
  Probe* probe = nullptr;  // the probe that owns it, while busy (alive while in flight)
};

// What one HTTP(S) target keeps between probes: its kept connection and the parsed
// address. A probe holds its target's slot from start to finish: one hash lookup per probe.
struct Slot {
  tcp::endpoint target;              // parsed once, when the slot is made
  std::shared_ptr<Connection> conn;  // the kept one (idle or busy), or the last one tried
  bool forgotten = false;            // taken out of the pool: keep nothing in it any more
};

// Deliberately not noexcept: libstdc++ then stores each key's hash in its node, so that a
// lookup walking a bucket compares stored hashes instead of hashing two strings per node.
struct ProbeSpecHash {
  size_t operator()(const ProbeSpec& p) const {
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
      : io(context), options(std::move(opts)), collect(context), expiry(context) {}

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

  // The slot of `spec`, made on its first probe; null when its address is no IP literal.
  std::shared_ptr<Slot> slotOf(const ProbeSpec& spec) {
    const auto [it, added] = pool.try_emplace(spec);
    if (added) {
      std::error_code ec;
      const auto address = asio::ip::make_address(spec.address, ec);
      if (ec) {
        pool.erase(it);
        return nullptr;
      }
      it->second = std::make_shared<Slot>(Slot{.target = tcp::endpoint(address, spec.port)});
    }
    return it->second;
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
  // The first read of each plain HTTP answer (Probe::readFirst()).
  std::array<char, 4096> scratch;

  // Deadlines of the probes in flight, without a timer per probe (a timer per probe costs
  // an insertion into and a removal from asio's timer heap, and a cancelled handler run,
  // every probe). Probes with equal timeouts expire in the order they started, so one
  // list per distinct timeout, appended at start, is sorted by deadline; a probe leaves
  // its list in O(1) when it finishes. One timer waits for the earliest head. The lists
  // also hold the probes in flight (Probe::self_).
  struct Deadlines {
    Clock::duration timeout;
    Probe* head = nullptr;
    Probe* tail = nullptr;
  };
  std::deque<Deadlines> deadlines;  // a handful, one per distinct timeout; never moved
  size_t in_flight = 0;             // probes in the lists
  asio::steady_timer expiry;
  Clock::time_point expiry_at = Clock::time_point::max();

  Deadlines& deadlinesFor(Clock::duration timeout) {
    for (auto& d : deadlines) {
      if (d.timeout == timeout) return d;
    }
    return deadlines.emplace_back(Deadlines{.timeout = timeout});
  }
  void watchDeadline(Clock::time_point at);
  void expireDue();
  // The last probe in flight finished: nothing to wait for, so that a loop with no
  // other work runs dry (a caller's io_context::run() returns) instead of waiting for
  // a deadline that no longer matters.
  void noneInFlight() {
    expiry_at = Clock::time_point::max();
    expiry.cancel();
  }
};

// One probe in flight. Every handler holds a shared_ptr to it, so it lives exactly as
// long as some operation is pending; finish() runs once, keeps or closes the connection,
// and the remaining operations complete with operation_aborted and let go.
class Probe : public std::enable_shared_from_this<Probe> {
 public:
  // `slot`: the target's slot when reusable (HTTP(S) with reuse on), else null.
  Probe(std::shared_ptr<Shared> shared, const ProbeSpec& spec, const tcp::endpoint& target,
        std::shared_ptr<Slot> slot, std::chrono::milliseconds timeout,
        std::function<void(ProbeOutcome)> done)
      : shared_(std::move(shared)),
        slot_(std::move(slot)),
        spec_(spec),
        target_(target),
        timeout_ms_(timeout.count()),
        done_(std::move(done)) {}

  // `self`: this probe; in flight, its place in the deadline list holds it (self_) until
  // finish(). The caller keeps its own reference across the call.
  void start(std::shared_ptr<Probe> self) {
    starting_ = true;
    self_ = std::move(self);
    const Clock::duration timeout = std::chrono::milliseconds(timeout_ms_);
    deadline_ = Clock::now() + timeout;
    deadlines_ = &shared_->deadlinesFor(timeout);
    prev_ = deadlines_->tail;
    (prev_ ? prev_->next_ : deadlines_->head) = this;
    deadlines_->tail = this;
    ++shared_->in_flight;
    shared_->watchDeadline(deadline_);
    std::shared_ptr<Connection> kept;
    if (slot_) {
      kept = slot_->conn;
      if (kept && (kept->busy || !kept->isOpen())) kept = nullptr;
    }
    if (kept) {
      use(std::move(kept));
      sendRequest();
    } else {
      connectFresh();
    }
    starting_ = false;
  }

  // The deadline passed (Shared::expireDue()). A verdict already known (the rest of the
  // body was still arriving) stands; the connection goes either way.
  void expire() {
    if (verdict_) return finish(std::move(*verdict_), /*keep=*/false);
    finish(ProbeOutcome::fail(FailReason::kTimeout, "timeout after " + std::to_string(timeout_ms_) +
                                                        " ms (" + phaseName(phase_) + ")"),
           false);
  }

  // Abandoned by a prober going away: no result, the connection is closed.
  void abandon() {
    finished_ = true;
    unlinkDeadline();
    if (conn_) drop();
    self_.reset();  // `this` may be gone from here on
  }

  Clock::time_point deadline() const noexcept { return deadline_; }
  Probe* nextByDeadline() const noexcept { return next_; }

  // Plain HTTP: time to read the answer (Shared::collectDue()), or the connection
  // became readable while this probe waits for it (Connection::watch()).
  void onReadable() {
    if (finished_ || phase_ != Phase::kResponse) return;  // timed out meanwhile
    Connection& c = *conn_;
    if (c.used == 0) return readFirst();
    if (!reserve()) return;
    std::error_code ec;
    const size_t n = c.receive(asio::buffer(c.buffer.get() + c.used, c.capacity - c.used), ec);
    if (ec == asio::error::would_block) return c.watch();  // not there yet
    c.used += n;
    const bool eof = ec == asio::error::eof;
    if (ec && !eof) return readFailed(ec);
    if (eof && retryIfStale(ec)) return;
    if (!evaluate({c.buffer.get(), c.used}, eof)) c.watch();
  }

 private:
  // HTTP(S) with reuse on: connections may be kept and taken from the pool.
  bool reusable() const noexcept {
    return shared_->options.reuse_connections && spec_.kind != ProbeKind::kTcp;
  }

  void use(std::shared_ptr<Connection> conn) {
    conn->busy = true;
    conn->used = 0;
    conn->probe = this;
    conn_ = std::move(conn);
  }

  void unlinkDeadline() noexcept {
    if (deadlines_ == nullptr) return;
    (prev_ ? prev_->next_ : deadlines_->head) = next_;
    (next_ ? next_->prev_ : deadlines_->tail) = prev_;
    prev_ = next_ = nullptr;
    deadlines_ = nullptr;
    if (--shared_->in_flight == 0) shared_->noneInFlight();
  }

  void connectFresh() {
    phase_ = Phase::kConnect;
    auto conn = std::make_shared<Connection>(shared_->io);
    use(conn);
    if (slot_ && (!slot_->conn || !slot_->conn->isOpen())) {
      // The fresh connection becomes the kept one unless another is still open (two
      // probes of one spec at once, which the engine never does): that one stays, and
      // this one is closed after its probe.
      slot_->conn = conn;
    }
    tcp::socket& socket = conn->socket;
    std::error_code ec;
    conn->protocol = target_.protocol();
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
    if (reusable()) conn_->shed();  // kept: out of the epoll set from now on
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
    const size_t sent = c.send(asio::buffer(c.request), ec);
    if (ec && ec != asio::error::would_block) return writeFailed(ec);
    if (sent == c.request.size()) return awaitAnswer();
    if (!c.adopt()) {
      return finish(ProbeOutcome::fail(FailReason::kError, "socket: cannot wait for it"), false);
    }
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
    shared_->collectLater(self_);  // in flight, so set: a copy, not a weak_ptr lock
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
    conn->probe = nullptr;
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

  // Plain HTTP, nothing of the answer read yet: read into the prober's scratch buffer,
  // warm in cache, and judge it there. Only an answer not complete in one read is copied
  // into the connection's own buffer (made then), to be completed by later reads. Most
  // answers are one read of a few hundred bytes, and connections idle between probes
  // hold no buffer.
  void readFirst() {
    Connection& c = *conn_;
    auto& scratch = shared_->scratch;
    const size_t want = std::min(scratch.size(), shared_->options.max_response_bytes + 1);
    std::error_code ec;
    const size_t n = c.receive(asio::buffer(scratch.data(), want), ec);
    if (ec == asio::error::would_block) return c.watch();  // not there yet
    const bool eof = ec == asio::error::eof;
    if (ec && !eof) return readFailed(ec);
    if (eof && retryIfStale(ec)) return;
    if (evaluate({scratch.data(), n}, eof)) return;
    if (c.capacity < n) {
      const size_t size = std::min(std::max<size_t>(n, 1024), shared_->options.max_response_bytes + 1);
      c.buffer = std::make_unique_for_overwrite<char[]>(size);
      c.capacity = size;
    }
    std::copy_n(scratch.data(), n, c.buffer.get());
    c.used = n;
    c.watch();
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
          if (!self->evaluate({conn->buffer.get(), conn->used}, eof)) self->readTls();
        });
  }

  // Judges the bytes read so far; true when the probe is finished. With a kept-alive
  // connection the verdict may come before the end of the response (a weight header
  // decides without the body): the rest is read too, so that the next response starts
  // on a clean connection, and the verdict is held until then (or until the deadline).
  // `bytes`: all of the answer read so far.
  bool evaluate(std::string_view bytes, bool eof) {
    const size_t limit = shared_->options.max_response_bytes;
    HttpExchange exchange = judgeHttpExchange(bytes, eof, limit);  // one parse of the head
    if (!verdict_) verdict_ = std::move(exchange.verdict);
    if (!verdict_) return false;
    if (eof || !reusable() || verdict_->reason == FailReason::kBadResponse) {
      finish(std::move(*verdict_), false);
      return true;
    }
    const HttpResponseEnd end = exchange.end;
    if (end.kind == HttpResponseEnd::kNeedMore && bytes.size() <= limit) return false;
    // Kept only when the response ended exactly at the bytes read: anything after it
    // would be read as the start of the next answer.
    const bool keep =
        end.kind == HttpResponseEnd::kAt && end.keep_alive && end.length == bytes.size();
    finish(std::move(*verdict_), keep);
    return true;
  }

  void finish(ProbeOutcome outcome, bool keep) {
    if (finished_) return;
    finished_ = true;
    unlinkDeadline();
    const auto hold = std::move(self_);  // let go when done, not before
    if (conn_) {
      auto conn = std::move(conn_);
      conn->probe = nullptr;
      conn->busy = false;
      if (keep && !slot_->forgotten && slot_->conn == conn) {
        ++conn->answered;  // idle now, owned by the slot until the next probe
        conn->shed();      // if a wait took it back into asio
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
  // In flight: this, held by its place in a deadline list (Shared::Deadlines).
  std::shared_ptr<Probe> self_;
  Shared::Deadlines* deadlines_ = nullptr;
  Probe* prev_ = nullptr;
  Probe* next_ = nullptr;
  Clock::time_point deadline_;
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
  if (!adopt()) {  // closed it: the probe finds out (EBADF) on its next read
    if (probe != nullptr) probe->onReadable();
    return;
  }
  watching = true;
  socket.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const std::error_code& ec) {
    self->watching = false;
    if (ec || !self->socket.is_open()) return;
    if (!self->busy) return self->close();  // bytes nobody asked for: not a clean connection
    if (self->probe != nullptr) self->probe->onReadable();
  });
}

void Shared::watchDeadline(Clock::time_point at) {
  if (at >= expiry_at) return;  // the timer wakes up earlier anyway, and looks again then
  expiry_at = at;
  expiry.expires_at(at);  // cancels a wait still pending; its handler sees aborted
  expiry.async_wait([weak = weak_from_this()](const std::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->expireDue();
  });
}

void Shared::expireDue() {
  expiry_at = Clock::time_point::max();
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (size_t i = 0; i < deadlines.size(); ++i) {
    // By index: a `done` run from expire() may start a probe with a new timeout.
    while (deadlines[i].head != nullptr && deadlines[i].head->deadline() <= now)
      deadlines[i].head->expire();  // unlinks it
    if (deadlines[i].head != nullptr) next = std::min(next, deadlines[i].head->deadline());
  }
  if (next != Clock::time_point::max()) watchDeadline(next);
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
  // Probes in flight are abandoned: their `done` never runs once the prober is gone.
  for (auto& d : s.deadlines) {
    while (d.head != nullptr) d.head->abandon();  // unlinks it
  }
  s.expiry.cancel();
}

void AsioProber::probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
                       std::function<void(ProbeOutcome)> done) {
  probeWith(spec, keep(spec), timeout, std::move(done));
}

std::shared_ptr<void> AsioProber::keep(const ProbeSpec& spec) {
  Shared& s = *impl_->shared;
  if (!s.options.reuse_connections || spec.kind == ProbeKind::kTcp) return nullptr;
  return s.slotOf(spec);
}

void AsioProber::probeWith(const ProbeSpec& spec, const std::shared_ptr<void>& kept,
                           std::chrono::milliseconds timeout,
                           std::function<void(ProbeOutcome)> done) {
  Shared& s = *impl_->shared;
  const bool reusable = s.options.reuse_connections && spec.kind != ProbeKind::kTcp;
  // A handle from keep(spec): the slot, or null when reusable and the address is no IP.
  std::shared_ptr<Slot> slot = reusable ? std::static_pointer_cast<Slot>(kept) : nullptr;
  tcp::endpoint target;
  std::error_code ec;
  if (slot) {
    target = slot->target;
  } else if (reusable) {
    ec = asio::error::invalid_argument;
  } else {
    const asio::ip::address address = asio::ip::make_address(spec.address, ec);
    if (!ec) target = tcp::endpoint(address, spec.port);
  }
  if (ec) {
    asio::post(s.io, [done = std::move(done), what = spec.address] {
      done(ProbeOutcome::fail(FailReason::kError, "invalid address '" + what + "'"));
    });
    return;
  }
  auto probe =
      std::make_shared<Probe>(impl_->shared, spec, target, std::move(slot), timeout, std::move(done));
  probe->start(probe);
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
