#pragma once
// What a health check probes and how often: the identity of a target (ProbeSpec) and its
// timing (ProbeTiming). Plain values, no I/O. Equal ProbeSpecs are one target: the engine
// probes a node:port once however many Services point at it (DESIGN.md section 3).

#include <compare>
#include <cstdint>
#include <string>

namespace ng::health {

enum class ProbeKind : uint8_t {
  kTcp,    // connect succeeds -> healthy (kube-proxy Cluster policy: TCP to the nodePort)
  kHttp,   // GET path, 200 serve / 503 drain (healthCheckNodePort, kube-proxy :10256)
  kHttps,  // the same over TLS
};

[[nodiscard]] const char* probeKindName(ProbeKind kind) noexcept;  // "tcp", "http", "https"

struct ProbeSpec {
  ProbeKind kind = ProbeKind::kTcp;
  std::string address;  // IPv4 or IPv6 literal (no host names: nothing here resolves DNS)
  uint16_t port = 0;
  std::string path = "/healthz";  // HTTP(S) only; ignored (and not part of url()) for TCP
  bool tls_verify = false;        // HTTPS only: false = no certificate checks at all;
                                  // true = chain to the system CAs and the cert names
                                  // `address` as an IP subject alternative name

  auto operator<=>(const ProbeSpec&) const = default;

  // "tcp://10.0.0.1:30080", "http://10.0.0.1:10256/healthz", "http://[2001:db8::1]:80/x".
  // For logs and the status API; tls_verify is not shown.
  [[nodiscard]] std::string url() const;
  // "10.0.0.1:10256" or "[2001:db8::1]:80": the HTTP Host header and log form.
  [[nodiscard]] std::string hostPort() const;
};

// Defaults are the ones found in the field (KUBERNETES.md: 2 s, 1 s, rise 2, fall 3).
struct ProbeTiming {
  uint32_t interval_ms = 2000;  // between probe starts; each gap is jittered by +-10%
  uint32_t timeout_ms = 1000;   // connect + TLS + request + response, all together
  uint32_t rise = 2;            // consecutive OK results that bring a target back up
  uint32_t fall = 3;            // consecutive non-OK results that take it out

  friend bool operator==(const ProbeTiming&, const ProbeTiming&) = default;
};

struct TargetSpec {
  ProbeSpec probe;
  ProbeTiming timing;
};

}  // namespace ng::health
