#include "health/http_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ng::health {
namespace {

struct Case {
  const char* description;
  std::string bytes;
  bool eof;
  ProbeOutcome::Result result;
  FailReason reason;
  int http_status;
  std::optional<uint32_t> weight;
};

const std::string kJsonBody =
    R"({"service":{"namespace":"shop","name":"web"},"localEndpoints":2,"serviceProxyHealthy":true})";

std::string response(std::string status_line, std::string headers, std::string body,
                     bool content_length = true) {
  std::string r = status_line + "\r\n" + headers;
  if (content_length) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

class JudgeTable : public testing::TestWithParam<Case> {};

TEST_P(JudgeTable, Decides) {
  const Case& c = GetParam();
  const auto verdict = judgeHttpResponse(c.bytes, c.eof);
  ASSERT_TRUE(verdict.has_value()) << c.description;
  EXPECT_EQ(verdict->result, c.result) << c.description << ": " << verdict->detail;
  EXPECT_EQ(verdict->reason, c.reason) << c.description << ": " << verdict->detail;
  EXPECT_EQ(verdict->http_status, c.http_status) << c.description;
  EXPECT_EQ(verdict->weight, c.weight) << c.description;
}

using R = ProbeOutcome;
using F = FailReason;

INSTANTIATE_TEST_SUITE_P(
    KubeProxySemantics, JudgeTable,
    testing::Values(
        Case{"200 with weight header", response("HTTP/1.1 200 OK", "X-Load-Balancing-Endpoint-Weight: 3\r\n", kJsonBody), false, R::kOk, F::kNone, 200, 3},
        Case{"header wins over localEndpoints", response("HTTP/1.1 200 OK", "x-load-balancing-endpoint-weight:7\r\n", kJsonBody), false, R::kOk, F::kNone, 200, 7},
        Case{"weight header needs no body", "HTTP/1.1 200 OK\r\nX-Load-Balancing-Endpoint-Weight: 0\r\nContent-Length: 999\r\n\r\n", false, R::kOk, F::kNone, 200, 0},
        Case{"200 with localEndpoints only", response("HTTP/1.1 200 OK", "Content-Type: application/json\r\n", kJsonBody), false, R::kOk, F::kNone, 200, 2},
        Case{"localEndpoints 0", response("HTTP/1.1 200 OK", "", R"({"localEndpoints":0})"), false, R::kOk, F::kNone, 200, 0},
        Case{"invalid header falls back to the body", response("HTTP/1.1 200 OK", "X-Load-Balancing-Endpoint-Weight: -1\r\n", kJsonBody), false, R::kOk, F::kNone, 200, 2},
        Case{"header over uint32 falls back", response("HTTP/1.1 200 OK", "X-Load-Balancing-Endpoint-Weight: 99999999999\r\n", "{}"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"negative localEndpoints ignored", response("HTTP/1.1 200 OK", "", R"({"localEndpoints":-2})"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"string localEndpoints ignored", response("HTTP/1.1 200 OK", "", R"({"localEndpoints":"2"})"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"nested localEndpoints ignored", response("HTTP/1.1 200 OK", "", R"({"x":{"localEndpoints":2}})"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"kube-proxy 10256 body", response("HTTP/1.1 200 OK", "", R"({"lastUpdated":"2024-01-01T00:00:00Z","currentTime":"2024-01-01T00:00:01Z","nodeEligible":true})"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"plain text body", response("HTTP/1.1 200 OK", "", "ok"), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"body to EOF without length", response("HTTP/1.0 200 OK", "", kJsonBody, false), true, R::kOk, F::kNone, 200, 2},
        Case{"chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"loc\r\n13;ext=1\r\nalEndpoints\":4}    \r\n0\r\n\r\n", false, R::kOk, F::kNone, 200, 4},
        Case{"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 20\n\n{\"localEndpoints\":5}", false, R::kOk, F::kNone, 200, 5},
        Case{"503 drains", response("HTTP/1.1 503 Service Unavailable", "", R"({"localEndpoints":0})"), false, R::kDrain, F::kHttpStatus, 503, std::nullopt},
        Case{"503 decided from headers alone", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5000\r\n\r\n", false, R::kDrain, F::kHttpStatus, 503, std::nullopt},
        Case{"500 fails", response("HTTP/1.1 500 Internal Server Error", "", ""), false, R::kFail, F::kHttpStatus, 500, std::nullopt},
        Case{"404 fails", response("HTTP/1.1 404 Not Found", "", ""), false, R::kFail, F::kHttpStatus, 404, std::nullopt},
        Case{"status without reason phrase", response("HTTP/1.1 200", "", ""), false, R::kOk, F::kNone, 200, std::nullopt},
        Case{"garbage", "SSH-2.0-OpenSSH_9.2\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"garbage detected from the first byte", "\x16\x03\x01", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"HTTP/2 preface-like status", "HTTP/2 200\r\n\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"empty then closed", "", true, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"truncated headers", "HTTP/1.1 200 OK\r\nContent-Le", true, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"local", true, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"malformed header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"invalid content length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt},
        Case{"invalid chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, R::kFail, F::kBadResponse, 0, std::nullopt}));

TEST(JudgeHttpResponse, WaitsForMoreBytesWhileUndecided) {
  EXPECT_FALSE(judgeHttpResponse("", false));
  EXPECT_FALSE(judgeHttpResponse("HTT", false));
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\nContent-Type: x\r\n", false));
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"localEnd", false));
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\n\r\n{\"localEndpoints\":1}", false));  // to EOF
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", false));
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", false));
}

TEST(JudgeHttpResponse, EveryPrefixOfAValidResponseWaitsThenTheWholeDecides) {
  const std::string full = response("HTTP/1.1 200 OK", "Content-Type: application/json\r\n", kJsonBody);
  for (size_t n = 0; n < full.size(); ++n)
    EXPECT_FALSE(judgeHttpResponse(std::string_view(full).substr(0, n), false)) << n;
  const auto verdict = judgeHttpResponse(full, false);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->weight, 2u);
  EXPECT_EQ(verdict->detail, "HTTP 200 weight 2");
}

TEST(JudgeHttpResponse, ResponsesOverTheLimitAreBad) {
  const std::string body(20000, 'x');
  const std::string big = response("HTTP/1.1 200 OK", "", body);
  const auto verdict = judgeHttpResponse(std::string_view(big).substr(0, kMaxHttpResponseBytes + 1), false);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->reason, FailReason::kBadResponse);
  EXPECT_EQ(verdict->detail, "bad response: larger than 16384 bytes");

  const std::string huge_headers = "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(200, 'p');
  const auto headers = judgeHttpResponse(huge_headers, false, /*limit=*/100);
  ASSERT_TRUE(headers);
  EXPECT_EQ(headers->reason, FailReason::kBadResponse);

  const std::string small = response("HTTP/1.1 200 OK", "", "{\"localEndpoints\":1}");
  EXPECT_EQ(judgeHttpResponse(small, false, small.size())->result, ProbeOutcome::kOk);
  EXPECT_EQ(judgeHttpResponse(small + "x", false, small.size())->result, ProbeOutcome::kOk);
  EXPECT_EQ(judgeHttpResponse(small, false, small.size() - 1)->reason, FailReason::kBadResponse);
}

TEST(JudgeHttpResponse, DetailsNameTheStatus) {
  EXPECT_EQ(judgeHttpResponse(response("HTTP/1.1 503 x", "", ""), false)->detail, "HTTP 503");
  EXPECT_EQ(judgeHttpResponse(response("HTTP/1.1 500 x", "", ""), false)->detail, "HTTP 500");
  EXPECT_EQ(judgeHttpResponse("garbage", false)->detail, "bad response: not an HTTP status line");
}

TEST(HttpRequest, IsAClosingHttp11Get) {
  EXPECT_EQ(httpRequest("/healthz", "10.0.0.1:10256"),
            "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:10256\r\nUser-Agent: nodegate-health/1\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(httpRequest("x", "[::1]:80").starts_with("GET /x HTTP/1.1\r\nHost: [::1]:80\r\n"));
}

TEST(HttpRequest, CanAskToKeepTheConnection) {
  EXPECT_EQ(httpRequest("/healthz", "10.0.0.1:10256", HttpConnection::kKeepAlive),
            "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:10256\r\nUser-Agent: nodegate-health/1\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n\r\n");
}

struct EndCase {
  const char* description;
  std::string bytes;
  HttpResponseEnd::Kind kind;
  size_t length;  // kAt only
  bool keep_alive;
};

class JudgeResponseEndTable : public testing::TestWithParam<EndCase> {};

TEST_P(JudgeResponseEndTable, FindsTheEnd) {
  const EndCase& c = GetParam();
  const HttpResponseEnd end = findHttpResponseEnd(c.bytes);
  EXPECT_EQ(end.kind, c.kind) << c.description;
  if (c.kind == HttpResponseEnd::kAt) {
    EXPECT_EQ(end.length, c.length) << c.description;
    EXPECT_EQ(end.keep_alive, c.keep_alive) << c.description;
  }
}

const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";  // 38 bytes
const std::string kChunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";  // 47

using E = HttpResponseEnd;
INSTANTIATE_TEST_SUITE_P(
    Rfc9112, JudgeResponseEndTable,
    testing::Values(
        EndCase{"content length", kHead + "ok", E::kAt, 40, true},
        EndCase{"bytes past the end are not part of it", kHead + "okHTTP/1.1", E::kAt, 40, true},
        EndCase{"body not complete", kHead + "o", E::kNeedMore, 0, false},
        EndCase{"head not complete", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", E::kNeedMore, 0, false},
        EndCase{"nothing yet", "", E::kNeedMore, 0, false},
        EndCase{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", E::kAt, 57, false},
        EndCase{"close among other tokens", "HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\ncontent-length: 0\r\n\r\n", E::kAt, 66, false},
        EndCase{"HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", E::kAt, 38, false},
        EndCase{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", E::kAt, 62, true},
        EndCase{"no length runs to close", "HTTP/1.1 200 OK\r\n\r\n{}", E::kAtClose, 0, false},
        EndCase{"unknown transfer coding runs to close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", E::kAtClose, 0, false},
        EndCase{"chunked", kChunked + "2\r\nok\r\n0\r\n\r\n", E::kAt, 47 + 12, true},
        EndCase{"chunked wins over content length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", E::kAt, 73, true},
        EndCase{"chunked with trailers", kChunked + "2;x=y\r\nok\r\n0\r\nX-T: 1\r\n\r\n", E::kAt, 47 + 24, true},
        EndCase{"chunked, last chunk not complete", kChunked + "2\r\nok\r\n0\r\n", E::kNeedMore, 0, false},
        EndCase{"chunked, bad size", kChunked + "zz\r\n", E::kInvalid, 0, false},
        EndCase{"204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", E::kAt, 46, true},
        EndCase{"304 has no body", "HTTP/1.1 304 Not Modified\r\n\r\n", E::kAt, 29, true},
        EndCase{"503 with a body", "HTTP/1.1 503 X\r\nContent-Length: 4\r\n\r\nbusy", E::kAt, 41, true},
        EndCase{"garbage", "SSH-2.0-OpenSSH_9.2\r\n", E::kInvalid, 0, false},
        EndCase{"malformed header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", E::kInvalid, 0, false}));

TEST(JudgeResponseEnd, EveryPrefixNeedsMoreAndTheWholeEndsExactly) {
  for (const std::string& full :
       {response("HTTP/1.1 200 OK", "Content-Type: application/json\r\n", kJsonBody),
        kChunked + "5\r\n{\"loc\r\n13;ext=1\r\nalEndpoints\":4}    \r\n0\r\n\r\n"}) {
    for (size_t n = 0; n < full.size(); ++n)
      EXPECT_EQ(findHttpResponseEnd(std::string_view(full).substr(0, n)).kind, E::kNeedMore) << n;
    const HttpResponseEnd end = findHttpResponseEnd(full + "HTTP/1.1 200 OK\r\n");
    EXPECT_EQ(end.kind, E::kAt);
    EXPECT_EQ(end.length, full.size());
    EXPECT_TRUE(end.keep_alive);
  }
}

// The prober's one-parse entry point answers exactly what the two functions answer, for
// every prefix of a range of answers (good, bad, oversize), with and without EOF.
TEST(JudgeHttpExchange, EqualsTheVerdictAndTheEndOfEveryPrefix) {
  const std::vector<std::string> answers = {
      response("HTTP/1.1 200 OK", "X-Load-Balancing-Endpoint-Weight: 3\r\n", kJsonBody),
      response("HTTP/1.1 200 OK", "Content-Type: application/json\r\n", kJsonBody),
      response("HTTP/1.0 200 OK", "Connection: keep-alive\r\n", kJsonBody),
      response("HTTP/1.1 503 Service Unavailable", "Connection: close\r\n", "{}"),
      response("HTTP/1.1 500 x", "", "") + "HTTP/1.1 200 OK\r\n",
      kChunked + "5\r\n{\"loc\r\n13;ext=1\r\nalEndpoints\":4}    \r\n0\r\nX-T: 1\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 20\n\n{\"localEndpoints\":5}",
      "HTTP/1.1 200 OK\r\n  \r\nno colon\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 1x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\nX-Load-Balancing-Endpoint-Weight: 2\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "SSH-2.0-OpenSSH_9.2\r\n",
      response("HTTP/1.1 200 OK", "", std::string(300, 'x')),
  };
  auto same = [](const std::optional<ProbeOutcome>& a, const std::optional<ProbeOutcome>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->result == b->result && a->reason == b->reason &&
                  a->http_status == b->http_status && a->weight == b->weight &&
                  a->detail == b->detail);
  };
  for (const std::string& full : answers) {
    for (size_t n = 0; n <= full.size(); ++n) {
      const std::string_view bytes = std::string_view(full).substr(0, n);
      for (const bool eof : {false, true}) {
        for (const size_t limit : {kMaxHttpResponseBytes, size_t{200}, size_t{40}}) {
          const HttpExchange x = judgeHttpExchange(bytes, eof, limit);
          const auto verdict = judgeHttpResponse(bytes, eof, limit);
          const HttpResponseEnd end = findHttpResponseEnd(bytes);
          ASSERT_TRUE(same(x.verdict, verdict)) << n << " of: " << full;
          ASSERT_EQ(x.end.kind, end.kind) << n << " of: " << full;
          ASSERT_EQ(x.end.length, end.length) << n << " of: " << full;
          ASSERT_EQ(x.end.keep_alive, end.keep_alive) << n << " of: " << full;
        }
      }
    }
  }
}

// A whitespace-only line inside the head ends the headers that count; the head still
// ends at the empty line, so a malformed line after it does not matter.
TEST(JudgeHttpResponse, HeadersAfterABlankLineAreNotRead) {
  const auto v = judgeHttpResponse("HTTP/1.1 200 OK\r\n \r\nno colon\r\n\r\n", true);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->result, ProbeOutcome::kOk);
  EXPECT_FALSE(judgeHttpResponse("HTTP/1.1 200 OK\r\nno colon\r\n", false));  // undecided yet
}

}  // namespace
}  // namespace ng::health
