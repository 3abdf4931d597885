#include "health/probe_spec.h"

#include <gtest/gtest.h>

#include <set>

namespace ng::health {
namespace {

TEST(ProbeSpec, Urls) {
  EXPECT_EQ((ProbeSpec{.kind = ProbeKind::kTcp, .address = "10.0.0.1", .port = 30080}).url(),
            "tcp://10.0.0.1:30080");
  EXPECT_EQ((ProbeSpec{.kind = ProbeKind::kHttp, .address = "10.0.0.1", .port = 10256}).url(),
            "http://10.0.0.1:10256/healthz");
  EXPECT_EQ((ProbeSpec{.kind = ProbeKind::kHttp, .address = "2001:db8::1", .port = 80, .path = "/x"}).url(),
            "http://[2001:db8::1]:80/x");
  EXPECT_EQ((ProbeSpec{.kind = ProbeKind::kHttps, .address = "10.0.0.2", .port = 443, .path = "y"}).url(),
            "https://10.0.0.2:443/y");
}

TEST(ProbeSpec, EveryFieldIsPartOfTheIdentity) {
  const ProbeSpec base{.kind = ProbeKind::kHttp, .address = "10.0.0.1", .port = 80};
  std::set<ProbeSpec> specs{base};
  auto kind = base;
  kind.kind = ProbeKind::kHttps;
  auto address = base;
  address.address = "10.0.0.2";
  auto port = base;
  port.port = 81;
  auto path = base;
  path.path = "/other";
  auto verify = base;
  verify.tls_verify = true;
  for (const auto& s : {kind, address, port, path, verify}) EXPECT_TRUE(specs.insert(s).second);
  EXPECT_FALSE(specs.insert(base).second);
  EXPECT_EQ(specs.size(), 6u);
}

}  // namespace
}  // namespace ng::health
