#pragma once
// The real prober: TCP connect, HTTP/1.1 GET or HTTPS GET on standalone asio, every probe
// an asynchronous state machine on the engine's io_context (one thread drives thousands).
//
// Per probe: one socket, one deadline timer covering connect + TLS + request + response,
// a response buffer bounded by max_response_bytes (see http_response.h for the verdict).
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
  };

  // Throws std::invalid_argument when source_address is set but is not an IP literal
  // (start-up configuration). `io` must outlive the prober.
  AsioProber(asio::io_context& io, Options options);
  ~AsioProber() override;

  void probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
             std::function<void(ProbeOutcome)> done) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ng::health
