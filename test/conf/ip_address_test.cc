#include "conf/ip_address.h"

#include <gtest/gtest.h>

#include <map>
#include <unordered_set>

namespace ng::conf {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

TEST(IpAddress, ParsesBothFamiliesAndPrintsCanonically) {
  struct Case {
    std::string_view text;
    IpFamily family;
    std::string_view canonical;
  };
  for (const Case& c : {Case{"10.0.0.1", IpFamily::kIpv4, "10.0.0.1"},
                        Case{"255.255.255.255", IpFamily::kIpv4, "255.255.255.255"},
                        Case{"fd00::1", IpFamily::kIpv6, "fd00::1"},
                        Case{"FD00:0:0:0:0:0:0:1", IpFamily::kIpv6, "fd00::1"},
                        Case{"2001:db8:0:0:1:0:0:1", IpFamily::kIpv6, "2001:db8::1:0:0:1"},
                        Case{"::ffff:1.2.3.4", IpFamily::kIpv6, "::ffff:1.2.3.4"},
                        Case{"::", IpFamily::kIpv6, "::"}}) {
    const auto a = IpAddress::parse(c.text);
    ASSERT_TRUE(a.has_value()) << c.text;
    EXPECT_EQ(a->family(), c.family) << c.text;
    EXPECT_EQ(a->str(), c.canonical) << c.text;
    EXPECT_EQ(IpAddress::parse(a->str()), a) << "round trip of " << c.text;
  }
}

TEST(IpAddress, RejectsWhatIsNotOneAddress) {
  for (std::string_view bad : {"", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.256", "1.2.3.4 ",
                               "fd00::1::2", "fd00::1%eth0", "[fd00::1]", "fd00::/64", "12345::1",
                               "fd00:0:0:0:0:0:0:0:1", "g::1", ":"}) {
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << "'" << bad << "'";
  }
  // Longer than any IPv6 text form: refused before inet_pton sees it.
  EXPECT_FALSE(IpAddress::parse(std::string(100, ':')).has_value());
}

TEST(IpAddress, Ipv4IsNotTheMappedIpv6Address) {
  EXPECT_NE(ip("1.2.3.4"), ip("::ffff:1.2.3.4"));
  EXPECT_EQ(ip("1.2.3.4").v4(), 0x01020304u);
  EXPECT_EQ(ip("::ffff:1.2.3.4").v4(), 0u);
  EXPECT_EQ(IpAddress(0x01020304u), ip("1.2.3.4"));  // implicit from host-order IPv4
}

TEST(IpAddress, OrdersIpv4BeforeIpv6ThenNumerically) {
  std::map<IpAddress, int> order;
  for (std::string_view t : {"fd00::2", "10.0.0.2", "fd00::1", "10.0.0.1", "::1", "9.255.255.255"}) {
    order[ip(t)] = 0;
  }
  std::vector<std::string> sorted;
  for (const auto& [a, _] : order) sorted.push_back(a.str());
  EXPECT_EQ(sorted, (std::vector<std::string>{"9.255.255.255", "10.0.0.1", "10.0.0.2", "::1", "fd00::1",
                                              "fd00::2"}));
  std::unordered_set<IpAddress> set{ip("10.0.0.1"), ip("::a00:1"), ip("10.0.0.1")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(IpAddress, UnicastHostRules) {
  for (std::string_view good : {"10.0.0.1", "192.0.2.1", "223.255.255.255", "fd00::1", "2001:db8::1", "::1:0:0:1"}) {
    EXPECT_TRUE(ip(good).isUnicastHost()) << good;
  }
  for (std::string_view bad : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::", "::1",
                               "ff02::1", "fe80::1", "febf::1", "::ffff:10.0.0.1", "::10.0.0.1"}) {
    EXPECT_FALSE(ip(bad).isUnicastHost()) << bad;
  }
  EXPECT_TRUE(ip("fe80::1").isLinkLocal());
  EXPECT_FALSE(ip("fec0::1").isLinkLocal());
  EXPECT_TRUE(ip("169.254.0.9").isLinkLocal());
}

TEST(IpAddress, MaskBitAndPlus) {
  EXPECT_EQ(ip("10.1.2.3").masked(8), ip("10.0.0.0"));
  EXPECT_EQ(ip("10.1.2.3").masked(0), ip("0.0.0.0"));
  EXPECT_EQ(ip("10.1.2.3").masked(32), ip("10.1.2.3"));
  EXPECT_EQ(ip("fd00:1:2:3:4:5:6:7").masked(64), ip("fd00:1:2:3::"));
  EXPECT_EQ(ip("fd00:1:2:3:4:5:6:7").masked(61), ip("fd00:1:2::"));  // 3 = 0b011: bits 61..63 go
  EXPECT_EQ(ip("fd00:1:2:ff:4:5:6:7").masked(60), ip("fd00:1:2:f0::"));
  EXPECT_EQ(ip("ffff::").masked(0), ip("::"));
  EXPECT_EQ(ip("fd00::1").masked(128), ip("fd00::1"));
  EXPECT_TRUE(ip("128.0.0.0").bit(0));
  EXPECT_FALSE(ip("128.0.0.0").bit(1));
  EXPECT_TRUE(ip("::1").bit(127));
  EXPECT_FALSE(ip("::1").bit(126));
  EXPECT_TRUE(ip("8000::").bit(0));
  EXPECT_EQ(ip("10.0.0.255").plus(1), ip("10.0.1.0"));
  EXPECT_EQ(ip("255.255.255.255").plus(1), ip("0.0.0.0"));  // wraps within the family
  EXPECT_EQ(ip("fd00::ffff").plus(1), ip("fd00::1:0"));
  EXPECT_EQ(ip("fd00::").plus(0x1'0000'0000ull), ip("fd00::1:0:0"));
  EXPECT_EQ(ip("fd00::ffff:ffff:ffff:ffff").plus(1), ip("fd00:0:0:1::"));  // carry past 64 bits
  EXPECT_EQ(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").plus(1), ip("::"));
}

TEST(IpPrefix, ParseContainsOverlaps) {
  const auto p4 = IpPrefix::parse("10.0.0.0/24");
  const auto p6 = IpPrefix::parse("fd00:1::/64");
  ASSERT_TRUE(p4 && p6);
  EXPECT_EQ(p4->str(), "10.0.0.0/24");
  EXPECT_EQ(p6->str(), "fd00:1::/64");
  EXPECT_TRUE(p4->contains(ip("10.0.0.200")));
  EXPECT_FALSE(p4->contains(ip("10.0.1.0")));
  EXPECT_FALSE(p4->contains(ip("::a00:1")));  // other family
  EXPECT_TRUE(p6->contains(ip("fd00:1::ffff")));
  EXPECT_FALSE(p6->contains(ip("fd00:2::1")));
  EXPECT_TRUE(IpPrefix::parse("::/0")->contains(ip("2001:db8::1")));
  EXPECT_FALSE(IpPrefix::parse("::/0")->contains(ip("1.2.3.4")));
  EXPECT_TRUE(IpPrefix::parse("fd00::1/128")->contains(ip("fd00::1")));
  EXPECT_FALSE(IpPrefix::parse("fd00::1/128")->contains(ip("fd00::2")));
  EXPECT_TRUE(IpPrefix::parse("10.0.0.1/24")->hasHostBits());
  EXPECT_FALSE(p6->hasHostBits());
  EXPECT_EQ(IpPrefix::parse("fd00::1/64")->network().str(), "fd00::/64");
  EXPECT_TRUE(p6->overlaps(*IpPrefix::parse("fd00::/16")));
  EXPECT_FALSE(p6->overlaps(*IpPrefix::parse("fd00:2::/64")));
  EXPECT_FALSE(p4->overlaps(*IpPrefix::parse("::/0")));
  for (std::string_view bad : {"10.0.0.0", "10.0.0.0/33", "fd00::/129", "fd00::/", "/24", "10.0.0.0/024",
                               "10.0.0.0/-1", "fd00::/64/1"}) {
    EXPECT_FALSE(IpPrefix::parse(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ng::conf
