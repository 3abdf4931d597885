#include "health/http_response.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ng::health {
namespace {

constexpr std::string_view kWeightHeader = "x-load-balancing-endpoint-weight";

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);  // header names are ASCII tokens
         });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <class T>
std::optional<T> parseUnsigned(std::string_view s) noexcept {
  s = trim(s);
  T v{};
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);  // rejects '-', '+'
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

ProbeOutcome bad(std::string why) {
  return ProbeOutcome::fail(FailReason::kBadResponse, "bad response: " + std::move(why));
}

// Whether the bytes so far can still become "HTTP/<d>.<d> <ddd>": garbage is refused at
// once instead of waiting for the timeout or the end of a 16 KiB stream.
bool plausibleStatusPrefix(std::string_view s) noexcept {
  constexpr std::string_view kProto = "HTTP/";
  for (size_t i = 0; i < s.size() && i < 12; ++i) {
    const char c = s[i];
    const bool digit = c >= '0' && c <= '9';
    const bool ok = i < 5 ? c == kProto[i] : i == 6 ? c == '.' : i == 8 ? c == ' ' : digit;
    if (!ok) return false;
  }
  return true;
}

enum class Chunked { kNeedMore, kBad, kDone };

// Decodes a chunked body (RFC 9112 section 7.1); extensions and trailers are skipped.
Chunked dechunk(std::string_view in, std::string& out) {
  out.clear();
  for (;;) {
    const size_t eol = in.find('\n');
    if (eol == std::string_view::npos) return Chunked::kNeedMore;
    std::string_view line = in.substr(0, eol);
    line = line.substr(0, line.find(';'));
    uint64_t size = 0;
    const std::string_view digits = trim(line);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size())
      return Chunked::kBad;
    in.remove_prefix(eol + 1);
    if (size == 0) {
      // Trailer section up to an empty line; the body itself is complete already.
      for (;;) {
        const size_t next = in.find('\n');
        if (next == std::string_view::npos) return Chunked::kNeedMore;
        if (trim(in.substr(0, next)).empty()) return Chunked::kDone;
        in.remove_prefix(next + 1);
      }
    }
    if (size > in.size()) return Chunked::kNeedMore;
    out.append(in.substr(0, size));
    in.remove_prefix(size);
    // The CRLF that ends the chunk's data (a bare LF is tolerated).
    if (in.starts_with('\n')) {
      in.remove_prefix(1);
    } else if (in.starts_with("\r\n")) {
      in.remove_prefix(2);
    } else if (in.empty() || in == "\r") {
      return Chunked::kNeedMore;
    } else {
      return Chunked::kBad;
    }
  }
}

std::optional<uint32_t> localEndpoints(std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  const auto it = doc.find("localEndpoints");
  if (it == doc.end() || !it->is_number_unsigned()) return std::nullopt;  // JSON ints >= 0
  const uint64_t v = it->get<uint64_t>();
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

ProbeOutcome ok200(std::optional<uint32_t> weight) {
  std::string detail = "HTTP 200";
  if (weight) detail += " weight " + std::to_string(*weight);
  return ProbeOutcome::ok(std::move(detail), 200, weight);
}

}  // namespace

std::optional<ProbeOutcome> judgeHttpResponse(std::string_view bytes, bool eof, size_t limit) {
  if (bytes.empty()) {
    if (eof) return bad("connection closed without a response");
    return std::nullopt;
  }
  if (!plausibleStatusPrefix(bytes)) return bad("not an HTTP status line");
  const bool too_big = bytes.size() > limit;
  const auto too_big_why = [limit] { return "larger than " + std::to_string(limit) + " bytes"; };
  if (too_big) bytes = bytes.substr(0, limit);  // judge only what fits; the rest is noise

  // Header section: lines up to the first empty one (CRLF, tolerating bare LF).
  size_t header_end = std::string_view::npos;
  for (size_t pos = 0;;) {
    const size_t eol = bytes.find('\n', pos);
    if (eol == std::string_view::npos) break;
    if (eol == pos || (eol == pos + 1 && bytes[pos] == '\r')) {
      header_end = eol + 1;
      break;
    }
    pos = eol + 1;
  }
  if (header_end == std::string_view::npos) {
    if (too_big) return bad("headers " + too_big_why());
    if (eof) return bad("truncated headers");
    return std::nullopt;
  }

  const std::string_view head = bytes.substr(0, header_end);
  const size_t first_eol = head.find('\n');
  const std::string_view status_line = trim(head.substr(0, first_eol));
  if (status_line.size() < 12 || !plausibleStatusPrefix(status_line) ||
      (status_line.size() > 12 && status_line[12] != ' '))
    return bad("not an HTTP status line");
  const int status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 +
                     (status_line[11] - '0');

  std::optional<uint64_t> content_length;
  bool chunked = false;
  std::optional<uint32_t> header_weight;
  for (size_t pos = first_eol + 1; pos < header_end;) {
    const size_t eol = head.find('\n', pos);
    const std::string_view line = trim(head.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos)
      return bad("malformed header line");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      content_length = parseUnsigned<uint64_t>(value);
      if (!content_length) return bad("invalid Content-Length");
    } else if (iequals(name, "transfer-encoding")) {
      chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
    } else if (iequals(name, kWeightHeader)) {
      header_weight = parseUnsigned<uint32_t>(value);  // invalid: fall back to the body
    }
  }

  // The status decides; the body only matters for a 200 without a usable weight header.
  if (status == 503) return ProbeOutcome::drain("HTTP 503", 503);
  if (status != 200)
    return ProbeOutcome::fail(FailReason::kHttpStatus, "HTTP " + std::to_string(status), status);
  if (header_weight) return ok200(header_weight);

  const std::string_view raw_body = bytes.substr(header_end);
  std::string decoded;
  std::string_view body;
  if (chunked) {
    switch (dechunk(raw_body, decoded)) {
      case Chunked::kBad: return bad("invalid chunked body");
      case Chunked::kNeedMore:
        if (too_big) return bad(too_big_why());
        if (eof) return bad("truncated body");
        return std::nullopt;
      case Chunked::kDone: body = decoded; break;
    }
  } else if (content_length) {
    if (raw_body.size() < *content_length) {
      if (too_big) return bad(too_big_why());
      if (eof) return bad("truncated body");
      return std::nullopt;
    }
    body = raw_body.substr(0, *content_length);
  } else {
    // No length: the body runs to the end of the connection (we sent Connection: close).
    if (too_big) return bad(too_big_why());
    if (!eof) return std::nullopt;
    body = raw_body;
  }
  return ok200(localEndpoints(body));
}

std::string httpRequest(std::string_view path, std::string_view host) {
  std::string req;
  req.reserve(96 + path.size() + host.size());
  req += "GET ";
  if (path.empty() || path.front() != '/') req += '/';
  req += path;
  req += " HTTP/1.1\r\nHost: ";
  req += host;
  req += "\r\nUser-Agent: nodegate-health/1\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  return req;
}

}  // namespace ng::health
