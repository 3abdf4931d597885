#pragma once
// The real prober: TCP connect, HTTP/1.1 GET or HTTPS GET on standalone asio, every probe
// an asynchronous state machine on the engine's io_context (one thread drives thousands).
//
// Per probe: one deadline covering connect + TLS + request + response (kept in a list
// per distinct timeout, sorted by construction, under one timer for all probes), a
// response bounded by max_response_bytes (see http_response.h for the verdict). A plain
// HTTP answer is read about 2 ms after its request, together with those of every request
// sent about then (one timer wake-up, one recv() each, into one scratch buffer shared by
// all probes); one not there yet is waited for.
//
// Connections: a TCP probe opens one connection per probe (the connect is the check).
// HTTP(S) probes, with reuse_connections (the default), keep one connection per target
// alive between probes, like Envoy's HTTP health checker and any HTTP/1.1 client talking
// to kube-proxy's Go net/http healthz server: "Connection: keep-alive" requests, the
// response's end found from Content-Length / chunked framing, and a fresh connection
// whenever the server closes (Connection: close, no length, its idle timeout), the
// connection fails, or a probe on it fails. A probe whose kept connection turns out to be
// stale (closed or reset before any byte of the answer: the server restarted or timed it
// out) is retried once on a fresh connection within the same timeout, so a stale socket
// is never reported as a failure. A timeout is never retried. Without reuse_connections
// every probe is its own connection with "Connection: close". An idle kept connection
// has nothing pending on the loop (no wake-ups, no system calls), and a kept plain HTTP
// one is not even registered with it: its answers arriving wake nothing, and it is
// registered again only when a probe must wait on it. A server that closed it meanwhile
// is found out by the next probe, which then retries as above.
//
// Threads: probe(), keep(), probeWith() and forget() on the thread running the
// io_context (one thread; the engine's); construction and destruction while the loop is
// not running, as HealthEngine does.
//
// Fail reasons and details: "connection refused" (kRefused), "timeout after N ms (phase)"
// (kTimeout), "No route to host" (kUnreachable), "HTTP 500" (kHttpStatus),
// "bad response: ..." (kBadResponse), "TLS: ..." (kTls), anything else kError.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "health/http_response.h"
#include "health/prober.h"

namespace ng::health {

class AsioProber final : public Prober {
 public:
  struct Options {
    // Local address probes are sent from, when set; applied to targets of the same
    // address family only (an IPv4 source cannot reach an IPv6 target).
    std::string source_address;
    size_t max_response_bytes = kMaxHttpResponseBytes;
    // Keep one connection per HTTP(S) target between probes (see above).
    bool reuse_connections = true;
  };

  // Throws std::invalid_argument when source_address is set but is not an IP literal
  // (start-up configuration). `io` must outlive the prober: the destructor closes the
  // connections kept between probes (probes still in flight own theirs and go with `io`).
  AsioProber(asio::io_context& io, Options options);
  ~AsioProber() override;

  void probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
             std::function<void(ProbeOutcome)> done) override;
  // HTTP(S) with reuse_connections: the target's slot in the pool of kept connections
  // (made now if need be); else nullptr. After forget(spec) the handle is a slot out of
  // the pool, and probes through it keep nothing.
  std::shared_ptr<void> keep(const ProbeSpec& spec) override;
  void probeWith(const ProbeSpec& spec, const std::shared_ptr<void>& kept,
                 std::chrono::milliseconds timeout, std::function<void(ProbeOutcome)> done) override;
  // Closes the kept connection of `spec` now if it is idle, else after its probe.
  void forget(const ProbeSpec& spec) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ng::health
