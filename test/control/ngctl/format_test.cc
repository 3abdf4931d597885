#include "control/ngctl/format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/control/ngctl/sample_vips.h"

namespace ng::ngctl {
namespace {

using nlohmann::json;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The line of `text` that starts with `prefix`, or "" (the test then fails on content).
std::string lineStartingWith(const std::string& text, const std::string& prefix) {
  for (const std::string& l : lines(text)) {
    if (l.starts_with(prefix)) return l;
  }
  return "";
}

TEST(Humanize, SiStepsWithOneDecimalBelowTen) {
  const struct {
    double value;
    const char* expected;
  } kCases[] = {
      {0, "0"},           {2, "2"},          {950, "950"},         {999, "999"},
      {0.5, "0.5"},       {3.5, "3.5"},      {9.94, "9.9"},        {12.4, "12"},
      {210.0, "210"},     {999.6, "1.0K"},   {1000, "1.0K"},       {1500, "1.5K"},
      {15300, "15K"},     {150000, "150K"},  {999999, "1.0M"},     {2.3e6, "2.3M"},
      {4.56e9, "4.6G"},   {1e12, "1.0T"},    {7.2e15, "7.2P"},     {3e21, "3000E"},
  };
  for (const auto& c : kCases) EXPECT_EQ(humanize(c.value), c.expected) << c.value;
}

TEST(Humanize, NegativeAndNonFiniteAreDashes) {
  EXPECT_EQ(humanize(-1), "-");
  EXPECT_EQ(humanize(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(humanize(std::numeric_limits<double>::infinity()), "-");
}

TEST(VipTable, SampleRendersAsExactAlignedTable) {
  const std::string expected =
      "NodeGate generation 4 at 2026-11-24T03:00:00Z\n"
      "Prot LocalAddress:Port   Mode     Owner           ActFlows  NewFlows/s  InPkt/s  OutPkt/s  InBytes/s  OutBytes/s\n"
      "  -> RemoteAddress:Port  Weight   Health                                                                          Node\n"
      "TCP  10.100.0.100:80     fullnat  default/web            2         0.5      3.5         3        210        4.0K\n"
      "  -> 10.200.0.11:30080   1        up                     2         0.5      3.5         3        210        2.3M  n1\n"
      "  -> 10.200.0.12:30080   1        down (refused)         0           0        0         0          0           0  n2\n"
      "Drops: no_service=3\n";
  EXPECT_EQ(formatVipTable(json::parse(test::kSampleVips)), expected);
}

TEST(VipTable, DownBackendShowsStateAndReason) {
  const std::string out = formatVipTable(json::parse(test::kSampleVips));
  const std::string n2 = lineStartingWith(out, "  -> 10.200.0.12:30080");
  EXPECT_NE(n2.find("down (refused)"), std::string::npos) << n2;
  EXPECT_TRUE(n2.ends_with("  n2")) << n2;
  // Only one of two backends is down: no warning on the VIP line.
  EXPECT_EQ(out.find("!!"), std::string::npos) << out;
}

TEST(VipTable, AllBackendsDownIsMarkedOnTheVipLine) {
  json doc = json::parse(test::kSampleVips);
  json& port = doc["vips"][0]["ports"][0];
  port["all_backends_down"] = true;
  port["backends"][0]["health"] = {{"state", "down"}, {"reason", "timeout"}, {"detail", "no answer in 1 s"}};
  const std::string out = formatVipTable(doc);
  const std::string vipLine = lineStartingWith(out, "TCP  10.100.0.100:80");
  EXPECT_TRUE(vipLine.ends_with("  !! ALL BACKENDS DOWN")) << vipLine;
  EXPECT_NE(lineStartingWith(out, "  -> 10.200.0.11:30080").find("down (timeout)"), std::string::npos) << out;
}

TEST(VipTable, AllDownIsWorkedOutWhenTheFlagIsMissing) {
  json doc = json::parse(test::kSampleVips);
  json& port = doc["vips"][0]["ports"][0];
  port.erase("all_backends_down");
  EXPECT_EQ(formatVipTable(doc).find("!!"), std::string::npos);
  port["backends"][0]["health"]["state"] = "down";
  EXPECT_NE(formatVipTable(doc).find("!! ALL BACKENDS DOWN"), std::string::npos);
}

TEST(VipTable, PortWithoutBackendsIsMarked) {
  json doc = json::parse(test::kSampleVips);
  doc["vips"][0]["ports"][0]["backends"] = json::array();
  EXPECT_TRUE(lineStartingWith(formatVipTable(doc), "TCP  10.100.0.100:80").ends_with("!! NO BACKENDS"));
}

TEST(VipTable, MissingOptionalFieldsPrintDashes) {
  const json doc = json::parse(R"({"vips": [{"vip": "10.100.0.101", "ports": [
      {"port": 53, "protocol": "UDP", "backends": [{"address": "10.200.0.13", "node_port": 30053}]}]}]})");
  const std::string out = formatVipTable(doc);
  EXPECT_EQ(lines(out).at(0), "NodeGate generation - at -");
  const std::string vipLine = lineStartingWith(out, "UDP  10.100.0.101:53");
  EXPECT_NE(vipLine.find(" -  "), std::string::npos) << vipLine;  // mode, owner, rates unknown
  const std::string backend = lineStartingWith(out, "  -> 10.200.0.13:30053");
  ASSERT_FALSE(backend.empty()) << out;
  EXPECT_TRUE(backend.ends_with("-")) << backend;  // node unknown
  EXPECT_EQ(out.find("Drops"), std::string::npos);
}

TEST(VipTable, WrongShapesDoNotThrow) {
  for (const char* text : {"null", "[]", "42", R"({"vips": {}})", R"({"vips": [1, "x", {"ports": 7}]})",
                           R"({"vips": [{"vip": "10.0.0.1", "ports": [{"backends": [null, {"health": 3}]}]}]})"}) {
    EXPECT_NO_THROW((void)formatVipTable(json::parse(text))) << text;
  }
  EXPECT_NE(formatVipTable(json::parse("{}")).find("(no VIPs)"), std::string::npos);
}

TEST(VipTable, Ipv6AddressesAreBracketed) {
  const json doc = json::parse(R"({"vips": [{"vip": "2001:db8::1", "ports": [
      {"port": 443, "protocol": "TCP", "backends": [{"address": "fd00::11", "node_port": 30443}]}]}]})");
  const std::string out = formatVipTable(doc);
  EXPECT_FALSE(lineStartingWith(out, "TCP  [2001:db8::1]:443").empty()) << out;
  EXPECT_FALSE(lineStartingWith(out, "  -> [fd00::11]:30443").empty()) << out;
}

TEST(VipDetail, ShowsHealthDetailSinceProbeAndEveryCounter) {
  const std::string out = formatVipDetail(json::parse(test::kSampleVips)["vips"][0]);
  const std::vector<std::string> expectedLines = {
      "VIP:     10.100.0.100",
      "Owner:   default/web",
      "Mode:    fullnat (ipMode Proxy)",
      "TCP 10.100.0.100:80  name http  nodePort 30080  externalTrafficPolicy Cluster",
      "  Backend n2  10.200.0.12:30080  weight 1  not serving",
      "    health:  down (refused: connection refused) since 2026-11-24T03:00:00Z",
      "    probe:   http://10.200.0.12:10256/healthz",
      "    health:  up since 2026-11-24T02:59:00Z",
      "  Counters    packets_in  bytes_in  packets_out  bytes_out  new_flows  active_flows",
      "  port total         120      9000          110     150000         12             2",
      "  port /s            3.5     210.0          3.0     4000.0        0.5             -",
      "  n1 /s              3.5     210.0          3.0  2300000.0        0.5             -",
      "  n2 total            20      1500           15          0          2             0",
  };
  const std::vector<std::string> got = lines(out);
  for (const std::string& l : expectedLines) {
    EXPECT_NE(std::find(got.begin(), got.end(), l), got.end()) << "missing line: " << l << "\nin:\n" << out;
  }
}

TEST(VipDetail, UncheckedBackendAndExtraCountersAreShown) {
  json vip = json::parse(test::kSampleVips)["vips"][0];
  vip["ports"][0]["backends"][0]["health"] = {
      {"state", "unchecked"}, {"reason", ""}, {"detail", ""}, {"since", ""}, {"probe", ""}};
  vip["ports"][0]["counters"]["syn_retries"] = 7;  // a counter this ngctl does not know yet
  const std::string out = formatVipDetail(vip);
  EXPECT_NE(out.find("    health:  unchecked, no probe configured\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("probe:   \n"), std::string::npos) << out;
  const std::string header = lineStartingWith(out, "  Counters");
  EXPECT_TRUE(header.ends_with("active_flows  syn_retries")) << header;
  EXPECT_TRUE(lineStartingWith(out, "  port total").ends_with("  7")) << out;
}

TEST(Stats, CountersAndOnlyNonZeroDrops) {
  const json stats = json::parse(R"({"generation": 4, "workers": 1,
      "counters": {"rx_packets": 38007, "tx_packets": 38000, "active_flows": 13},
      "drops": {"vlan": 0, "no_service": 3, "ttl_exceeded": 0, "no_backend": 12}})");
  EXPECT_EQ(formatStats(stats),
            "Generation 4, workers 1\n"
            "Counter       Value\n"
            "active_flows     13\n"
            "rx_packets    38007\n"
            "tx_packets    38000\n"
            "\n"
            "Drop        Count\n"
            "no_backend     12\n"
            "no_service      3\n");
}

TEST(Stats, NoDropsSaysNone) {
  const json stats = json::parse(R"({"generation": 1, "workers": 2, "counters": {"rx_packets": 1},
                                     "drops": {"vlan": 0}})");
  EXPECT_TRUE(formatStats(stats).ends_with("\nDrops: none\n"));
}

TEST(StatsDelta, PerSecondRatesExceptGaugesAndResets) {
  const json prev = json::parse(R"({"generation": 4, "workers": 1,
      "counters": {"rx_packets": 1000, "rx_bytes": 5000000, "active_flows": 10, "new_flows": 50},
      "drops": {"no_service": 3, "vlan": 0}})");
  const json cur = json::parse(R"({"generation": 5, "workers": 1,
      "counters": {"rx_packets": 4000, "rx_bytes": 9000000, "active_flows": 12, "new_flows": 20},
      "drops": {"no_service": 7, "vlan": 0}})");
  EXPECT_EQ(formatStatsDelta(prev, cur, 2.0),
            "Generation 5, workers 1, rates over 2.0 s\n"
            "Counter         Value  Per-second\n"
            "active_flows       12           -\n"
            "new_flows          20           -\n"
            "rx_bytes      9000000        2.0M\n"
            "rx_packets       4000        1.5K\n"
            "\n"
            "Drop        Count  Per-second\n"
            "no_service      7           2\n");
}

TEST(Ingress, OneLinePerResponse) {
  EXPECT_EQ(formatIngress(json::parse(
                R"({"namespace":"shop","name":"web","ingress":[{"ip":"10.100.0.100","ipMode":"Proxy"}]})")),
            "shop/web: ingress 10.100.0.100 (ipMode Proxy)\n");
  EXPECT_EQ(formatIngress(json::parse(R"({"namespace":"shop","name":"web","ingress":[
                {"ip":"10.100.0.100","ipMode":"VIP"},{"ip":"2001:db8::1"}]})")),
            "shop/web: ingress 10.100.0.100 (ipMode VIP), 2001:db8::1\n");
  EXPECT_EQ(formatIngress(json::parse(R"({"namespace":"shop","name":"web","ingress":[]})")),
            "shop/web: applied, no ingress assigned yet\n");
}

}  // namespace
}  // namespace ng::ngctl
