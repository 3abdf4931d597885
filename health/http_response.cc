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

// Walks a chunked body (RFC 9112 section 7.1); extensions and trailers are skipped. On
// kDone, `*end` is the offset just past the trailer section's empty line and `out` (when
// given) holds the decoded data.
Chunked dechunk(std::string_view in, std::string* out, size_t* end) {
  size_t pos = 0;
  for (;;) {
    const size_t eol = in.find('\n', pos);
    if (eol == std::string_view::npos) return Chunked::kNeedMore;
    std::string_view line = in.substr(pos, eol - pos);
    line = line.substr(0, line.find(';'));
    uint64_t size = 0;
    const std::string_view digits = trim(line);
    auto [last, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
    if (digits.empty() || ec != std::errc{} || last != digits.data() + digits.size())
      return Chunked::kBad;
    pos = eol + 1;
    if (size == 0) {
      // Trailer section up to an empty line; the body itself is complete already.
      for (;;) {
        const size_t next = in.find('\n', pos);
        if (next == std::string_view::npos) return Chunked::kNeedMore;
        const bool empty = trim(in.substr(pos, next - pos)).empty();
        pos = next + 1;
        if (empty) {
          *end = pos;
          return Chunked::kDone;
        }
      }
    }
    if (size > in.size() - pos) return Chunked::kNeedMore;
    if (out != nullptr) out->append(in.substr(pos, size));
    pos += size;
    // The CRLF that ends the chunk's data (a bare LF is tolerated).
    const std::string_view rest = in.substr(pos);
    if (rest.starts_with('\n')) {
      pos += 1;
    } else if (rest.starts_with("\r\n")) {
      pos += 2;
    } else if (rest.empty() || rest == "\r") {
      return Chunked::kNeedMore;
    } else {
      return Chunked::kBad;
    }
  }
}

// Whether a comma-separated header value (Connection) lists `token`.
bool hasToken(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// The status line and the headers both the verdict and the framing need.
struct Head {
  size_t size = 0;  // of the header section, its empty line included
  int status = 0;
  bool http10 = false;  // "HTTP/1.0": persistent only when asked for (RFC 9112 section 9.3)
  std::optional<uint64_t> content_length;
  bool transfer_encoding = false;
  bool chunked = false;  // the final transfer coding is chunked
  bool close = false;       // Connection: close
  bool keep_alive = false;  // Connection: keep-alive
  std::optional<uint32_t> weight;  // a valid X-Load-Balancing-Endpoint-Weight
  std::string_view error;          // kBad: why
};

enum class HeadParse { kNeedMore, kBad, kDone };

// One pass over the lines up to the first empty one (CRLF, tolerating bare LF). The
// header section counts as complete only once that empty line is there: before it, even
// a malformed line means "need more" (the answer is judged as a whole).
HeadParse parseHead(std::string_view bytes, Head& head) noexcept {
  const size_t first_eol = bytes.find('\n');
  if (first_eol == std::string_view::npos) return HeadParse::kNeedMore;
  std::string_view error;
  const std::string_view status_line = trim(bytes.substr(0, first_eol));
  if (status_line.size() < 12 || !plausibleStatusPrefix(status_line) ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    error = "not an HTTP status line";
  }
  // After a blank (whitespace-only) line, later lines are no headers; the section still
  // ends only at a truly empty line.
  bool headers_over = false;
  size_t pos = first_eol + 1;
  for (;;) {
    const size_t eol = bytes.find('\n', pos);
    if (eol == std::string_view::npos) return HeadParse::kNeedMore;
    const std::string_view raw = bytes.substr(pos, eol - pos);
    pos = eol + 1;
    if (raw.empty() || raw == "\r") break;
    if (!error.empty() || headers_over) continue;
    const std::string_view line = trim(raw);
    if (line.empty()) {
      headers_over = true;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      error = "malformed header line";
      continue;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      head.content_length = parseUnsigned<uint64_t>(value);
      if (!head.content_length) error = "invalid Content-Length";
    } else if (iequals(name, "transfer-encoding")) {
      head.transfer_encoding = true;
      head.chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
    } else if (iequals(name, "connection")) {
      head.close = head.close || hasToken(value, "close");
      head.keep_alive = head.keep_alive || hasToken(value, "keep-alive");
    } else if (iequals(name, kWeightHeader)) {
      head.weight = parseUnsigned<uint32_t>(value);  // invalid: fall back to the body
    }
  }
  head.size = pos;
  if (!error.empty()) {
    head.error = error;
    return HeadParse::kBad;
  }
  head.status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 +
                (status_line[11] - '0');
  head.http10 = status_line.starts_with("HTTP/1.0") || status_line.starts_with("HTTP/0.");
  return HeadParse::kDone;
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

// The verdict once the head is parsed (`parsed` of `bytes`, already cut to the limit).
std::optional<ProbeOutcome> judgeParsed(std::string_view bytes, bool eof, size_t limit,
                                        bool too_big, HeadParse parsed, const Head& head) {
  const auto too_big_why = [limit] { return "larger than " + std::to_string(limit) + " bytes"; };
  switch (parsed) {
    case HeadParse::kNeedMore:
      if (too_big) return bad("headers " + too_big_why());
      if (eof) return bad("truncated headers");
      return std::nullopt;
    case HeadParse::kBad: return bad(std::string(head.error));
    case HeadParse::kDone: break;
  }

  // The status decides; the body only matters for a 200 without a usable weight header.
  const int status = head.status;
  if (status == 503) return ProbeOutcome::drain("HTTP 503", 503);
  if (status != 200)
    return ProbeOutcome::fail(FailReason::kHttpStatus, "HTTP " + std::to_string(status), status);
  if (head.weight) return ok200(head.weight);

  const std::string_view raw_body = bytes.substr(head.size);
  std::string decoded;
  std::string_view body;
  if (head.chunked) {
    size_t end = 0;
    switch (dechunk(raw_body, &decoded, &end)) {
      case Chunked::kBad: return bad("invalid chunked body");
      case Chunked::kNeedMore:
        if (too_big) return bad(too_big_why());
        if (eof) return bad("truncated body");
        return std::nullopt;
      case Chunked::kDone: body = decoded; break;
    }
  } else if (head.content_length) {
    if (raw_body.size() < *head.content_length) {
      if (too_big) return bad(too_big_why());
      if (eof) return bad("truncated body");
      return std::nullopt;
    }
    body = raw_body.substr(0, *head.content_length);
  } else {
    // No length: the body runs to the end of the connection (RFC 9112 section 6.3).
    if (too_big) return bad(too_big_why());
    if (!eof) return std::nullopt;
    body = raw_body;
  }
  return ok200(localEndpoints(body));
}

// Where the response ends once the head is parsed (`parsed` of all of `bytes`).
HttpResponseEnd endParsed(std::string_view bytes, HeadParse parsed, const Head& head) noexcept {
  switch (parsed) {
    case HeadParse::kNeedMore: return {.kind = HttpResponseEnd::kNeedMore};
    case HeadParse::kBad: return {.kind = HttpResponseEnd::kInvalid};
    case HeadParse::kDone: break;
  }
  const bool keep_alive = head.http10 ? head.keep_alive && !head.close : !head.close;
  const auto at = [&](uint64_t body) -> HttpResponseEnd {
    return {.kind = HttpResponseEnd::kAt, .length = head.size + body, .keep_alive = keep_alive};
  };
  const int status = head.status;
  if (status < 200 || status == 204 || status == 304) return at(0);  // never a body
  const std::string_view body = bytes.substr(head.size);
  if (head.chunked) {
    size_t end = 0;
    switch (dechunk(body, nullptr, &end)) {
      case Chunked::kNeedMore: return {.kind = HttpResponseEnd::kNeedMore};
      case Chunked::kBad: return {.kind = HttpResponseEnd::kInvalid};
      case Chunked::kDone: return at(end);
    }
  }
  // A transfer coding other than chunked has no length of its own (section 6.3, rule 4).
  if (head.transfer_encoding || !head.content_length) return {.kind = HttpResponseEnd::kAtClose};
  if (body.size() < *head.content_length) return {.kind = HttpResponseEnd::kNeedMore};
  return at(*head.content_length);
}

}  // namespace

std::optional<ProbeOutcome> judgeHttpResponse(std::string_view bytes, bool eof, size_t limit) {
  if (bytes.empty()) {
    if (eof) return bad("connection closed without a response");
    return std::nullopt;
  }
  if (!plausibleStatusPrefix(bytes)) return bad("not an HTTP status line");
  const bool too_big = bytes.size() > limit;
  if (too_big) bytes = bytes.substr(0, limit);  // judge only what fits; the rest is noise
  Head head;
  const HeadParse parsed = parseHead(bytes, head);
  return judgeParsed(bytes, eof, limit, too_big, parsed, head);
}

HttpResponseEnd findHttpResponseEnd(std::string_view bytes) noexcept {
  if (!bytes.empty() && !plausibleStatusPrefix(bytes)) return {.kind = HttpResponseEnd::kInvalid};
  Head head;
  const HeadParse parsed = parseHead(bytes, head);
  return endParsed(bytes, parsed, head);
}

HttpExchange judgeHttpExchange(std::string_view bytes, bool eof, size_t limit) {
  // Past the limit the verdict looks at a cut copy and the framing at all of it: two
  // parses, on a path only oversize answers take.
  if (bytes.empty() || bytes.size() > limit || !plausibleStatusPrefix(bytes))
    return {.verdict = judgeHttpResponse(bytes, eof, limit), .end = findHttpResponseEnd(bytes)};
  Head head;
  const HeadParse parsed = parseHead(bytes, head);
  return {.verdict = judgeParsed(bytes, eof, limit, false, parsed, head),
          .end = endParsed(bytes, parsed, head)};
}

std::string httpRequest(std::string_view path, std::string_view host, HttpConnection connection) {
  std::string req;
  req.reserve(96 + path.size() + host.size());
  req += "GET ";
  if (path.empty() || path.front() != '/') req += '/';
  req += path;
  req += " HTTP/1.1\r\nHost: ";
  req += host;
  req += "\r\nUser-Agent: nodegate-health/1\r\nAccept: */*\r\nConnection: ";
  req += connection == HttpConnection::kKeepAlive ? "keep-alive" : "close";
  req += "\r\n\r\n";
  return req;
}

}  // namespace ng::health
