#include "health/probe_spec.h"

namespace ng::health {

const char* probeKindName(ProbeKind kind) noexcept {
  switch (kind) {
    case ProbeKind::kTcp: return "tcp";
    case ProbeKind::kHttp: return "http";
    case ProbeKind::kHttps: return "https";
  }
  return "?";
}

std::string ProbeSpec::hostPort() const {
  // A colon can only appear in an IPv6 literal, which URLs and Host headers bracket.
  const bool v6 = address.find(':') != std::string::npos;
  std::string out;
  out.reserve(address.size() + 8);
  if (v6) out += '[';
  out += address;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string ProbeSpec::url() const {
  std::string out = probeKindName(kind);
  out += "://";
  out += hostPort();
  if (kind != ProbeKind::kTcp) {
    if (path.empty() || path.front() != '/') out += '/';
    out += path;
  }
  return out;
}

}  // namespace ng::health
