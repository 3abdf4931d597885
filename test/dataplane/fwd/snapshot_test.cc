// The snapshot's compiled forms: source ranges (prefix -> interval, merging, the
// allowed-source check at its edges) and the serving-backend lookup session affinity uses.

#include "dataplane/fwd/snapshot.h"

#include <gtest/gtest.h>

#include "test/support/packet_builder.h"

namespace ng::fwd {
namespace {

using test::ip;

SourceRange range(const char* first, const char* last) { return {.first = ip(first), .last = ip(last)}; }

TEST(SourceRanges, PrefixRangeCoversExactlyThePrefix) {
  EXPECT_EQ(prefixRange(ip("198.51.100.0"), 24), range("198.51.100.0", "198.51.100.255"));
  EXPECT_EQ(prefixRange(ip("203.0.113.7"), 32), range("203.0.113.7", "203.0.113.7"));
  EXPECT_EQ(prefixRange(0, 0), range("0.0.0.0", "255.255.255.255"));
  EXPECT_EQ(prefixRange(ip("10.1.2.3"), 8), range("10.0.0.0", "10.255.255.255")) << "host bits ignored";
  EXPECT_EQ(prefixRange(ip("128.0.0.0"), 1), range("128.0.0.0", "255.255.255.255"));
  EXPECT_EQ(prefixRange(ip("255.255.255.255"), 32), range("255.255.255.255", "255.255.255.255"));
}

TEST(SourceRanges, MergeSortsJoinsOverlapsAndNeighboursOnly) {
  EXPECT_TRUE(mergeSourceRanges({}).empty());
  EXPECT_EQ(mergeSourceRanges({prefixRange(ip("192.168.1.0"), 24), prefixRange(ip("10.0.0.0"), 8),
                               prefixRange(ip("10.1.0.0"), 16), prefixRange(ip("192.168.0.0"), 24),
                               prefixRange(ip("192.168.3.0"), 24)}),
            (std::vector<SourceRange>{range("10.0.0.0", "10.255.255.255"), range("192.168.0.0", "192.168.1.255"),
                                      range("192.168.3.0", "192.168.3.255")}))
      << "contained /16 absorbed, adjacent /24s joined, the gap at 192.168.2.0/24 kept";
  EXPECT_EQ(mergeSourceRanges({prefixRange(ip("255.255.255.255"), 32), prefixRange(ip("255.255.255.0"), 24)}),
            (std::vector<SourceRange>{range("255.255.255.0", "255.255.255.255")}))
      << "no wrap past the top of the address space";
  EXPECT_EQ(mergeSourceRanges({prefixRange(ip("0.0.0.0"), 32), prefixRange(ip("0.0.0.0"), 0)}),
            (std::vector<SourceRange>{range("0.0.0.0", "255.255.255.255")}));
}

ServicePort withRanges(std::vector<SourceRange> ranges) {
  ServicePort sp;
  sp.source_ranges = mergeSourceRanges(std::move(ranges));
  return sp;
}

TEST(SourceRanges, EmptyListAllowsEverySource) {
  const ServicePort sp;
  for (uint32_t src : {0u, 1u, ip("10.100.0.2"), 0xffffffffu}) EXPECT_TRUE(sp.allowsSource(src)) << src;
}

TEST(SourceRanges, SlashZeroAllowsTheWholeSpace) {
  const ServicePort sp = withRanges({prefixRange(0, 0)});
  for (uint32_t src : {0u, 1u, ip("10.100.0.2"), 0xfffffffeu, 0xffffffffu}) EXPECT_TRUE(sp.allowsSource(src)) << src;
}

TEST(SourceRanges, SlashThirtyTwoAllowsOneAddress) {
  const ServicePort sp = withRanges({prefixRange(ip("10.100.0.2"), 32)});
  EXPECT_TRUE(sp.allowsSource(ip("10.100.0.2")));
  EXPECT_FALSE(sp.allowsSource(ip("10.100.0.1")));
  EXPECT_FALSE(sp.allowsSource(ip("10.100.0.3")));
  EXPECT_FALSE(sp.allowsSource(0));
  EXPECT_FALSE(sp.allowsSource(0xffffffffu));
}

TEST(SourceRanges, EdgesOfSeveralRanges) {
  const ServicePort sp = withRanges({prefixRange(ip("203.0.113.0"), 24), prefixRange(ip("198.51.100.0"), 24),
                                     prefixRange(ip("255.255.255.255"), 32), prefixRange(0, 32)});
  ASSERT_EQ(sp.source_ranges.size(), 4u);
  for (const char* in : {"0.0.0.0", "198.51.100.0", "198.51.100.255", "203.0.113.0", "203.0.113.128",
                         "203.0.113.255", "255.255.255.255"}) {
    EXPECT_TRUE(sp.allowsSource(ip(in))) << in;
  }
  for (const char* out : {"0.0.0.1", "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0",
                          "200.0.0.0", "255.255.255.254"}) {
    EXPECT_FALSE(sp.allowsSource(ip(out))) << out;
  }
}

TEST(ServingBackend, FindsServingNodesSortedOrNot) {
  ForwardingSnapshot snap;
  ServicePort sorted{.vip = ip("10.100.0.100"), .port = 80, .proto = 6};
  sorted.backends = {{.node_ip = ip("10.200.0.11"), .node_port = 30080, .weight = 1},
                     {.node_ip = ip("10.200.0.12"), .node_port = 30080, .weight = 0},
                     {.node_ip = ip("10.200.0.13"), .node_port = 30080, .weight = 3}};
  ServicePort unsorted = sorted;
  unsorted.port = 81;
  std::swap(unsorted.backends[0], unsorted.backends[2]);
  snap.service_ports = {sorted, unsorted};
  snap.finalize();
  EXPECT_TRUE(snap.service_ports[0].backends_sorted);
  EXPECT_FALSE(snap.service_ports[1].backends_sorted);
  for (const ServicePort& sp : snap.service_ports) {
    SCOPED_TRACE(sp.port);
    const Backend* b = sp.servingBackend(ip("10.200.0.13"), 30080);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->weight, 3);
    EXPECT_NE(sp.servingBackend(ip("10.200.0.11"), 30080), nullptr);
    EXPECT_EQ(sp.servingBackend(ip("10.200.0.12"), 30080), nullptr) << "weight 0 drains: not serving";
    EXPECT_EQ(sp.servingBackend(ip("10.200.0.11"), 30081), nullptr) << "another nodePort";
    EXPECT_EQ(sp.servingBackend(ip("10.200.0.14"), 30080), nullptr);
    EXPECT_EQ(sp.servingBackend(ip("10.200.0.1"), 30080), nullptr);
  }
}

TEST(ServingBackend, DuplicateNodeAddressesAreNotTakenForSorted) {
  ForwardingSnapshot snap;
  ServicePort sp{.vip = ip("10.100.0.100"), .port = 80, .proto = 6};
  sp.backends = {{.node_ip = ip("10.200.0.11"), .node_port = 30080, .weight = 1},
                 {.node_ip = ip("10.200.0.11"), .node_port = 30081, .weight = 1}};
  snap.service_ports = {sp};
  snap.finalize();
  EXPECT_FALSE(snap.service_ports[0].backends_sorted);
  EXPECT_NE(snap.service_ports[0].servingBackend(ip("10.200.0.11"), 30081), nullptr);
}

}  // namespace
}  // namespace ng::fwd
