// IPv6 and dual-stack packet fixtures (topology: fixtures.h, Topo6). Each entry states
// the input frame, the verdict, the drop reason or the exact output frame, built fresh
// by the packet builder so every checksum in it is recomputed independently of the
// rewrite code.
#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/checksum.h"
#include "dataplane/pkt/headers.h"
#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

namespace {

constexpr uint16_t kClientPort = 40000;
const Ip6 kAllNodes = {.hi = 0xff02000000000000ULL, .lo = 1};

PacketBuilder fromNode6(const Ip6& node) { return PacketBuilder().eth(Topo6::nodeMac(node), Topo::intMac()); }

Step answer6(uint8_t port, Bytes input, Bytes output) {
  return Step{.in_port = port, .input = std::move(input), .verdict = Action::Kind::kForward, .out_port = port,
              .output = [output](const Observed&) { return output; }};
}

// The client's TCP segment to VIP6:`port` as it leaves for the chosen node.
std::function<Bytes(const Observed&)> natTcp6(uint16_t port, uint8_t flags, size_t payload = 0) {
  return [=](const Observed& o) {
    return PacketBuilder()
        .eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
        .ipv6(Topo6::intIp(), o.node_ip6, 63)
        .tcp(o.snat_port, port == 80 ? uint16_t{30080} : SvcPorts::nodePortOf(port), flags)
        .payload(payload)
        .build();
  };
}

std::function<Bytes(const Observed&)> restored6(uint8_t flags, size_t payload = 0) {
  return [=](const Observed&) {
    return PacketBuilder()
        .eth(Topo::extMac(), Topo::clientMac())
        .ipv6(Topo6::vip(), Topo6::clientIp(), 63)
        .tcp(80, kClientPort, flags)
        .payload(payload)
        .build();
  };
}

Bytes tcp6From(const Ip6& src, uint16_t port, uint8_t flags, uint8_t hop_limit = 64) {
  return fromClient().ipv6(src, Topo6::vip(), hop_limit).tcp(kClientPort, port, flags).build();
}

// A Neighbor Solicitation from the client side for `target`, multicast to its
// solicited-node group, with the client's link-layer address.
Bytes nsFromClient(const Ip6& target, uint8_t hop_limit = 255) {
  const Ip6 group = solicitedNode(target);
  return PacketBuilder()
      .eth(Topo::clientMac(), multicastMac(group))
      .ipv6(Topo6::clientIp(), group, hop_limit)
      .ndSolicit(target, Topo::clientMac())
      .build();
}

Bytes naToClient(const Ip6& target, const Ip6& from) {
  return PacketBuilder()
      .eth(Topo::extMac(), Topo::clientMac())
      .ipv6(from, Topo6::clientIp(), 255)
      .ndAdvert(target, icmp6::kNaSolicited | icmp6::kNaOverride, Topo::extMac())
      .build();
}

Bytes clientUdp6Datagram(size_t payload) {
  return fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).udp(5353, 53).payload(payload).build();
}

std::function<Bytes(const Observed&)> natUdp6Fragment(size_t payload, uint32_t id, size_t k) {
  return [=](const Observed& o) {
    return fragmentIpv6(PacketBuilder()
                            .eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
                            .ipv6(Topo6::intIp(), o.node_ip6, 63)
                            .udp(o.snat_port, 30053)
                            .payload(payload)
                            .build(),
                        1448, id)[k];
  };
}

Step laterToNode6(Bytes input, std::function<Bytes(const Observed&)> expected) {
  return Step{.in_port = kExt, .input = std::move(input), .verdict = Action::Kind::kForward, .out_port = kInt,
              .output = std::move(expected)};
}

// A client -> IPv6 tunnel VIP packet that must leave IPv6-in-IPv6 toward a node.
Step tunnelStep6(Bytes input, bool same_node = true) {
  Step s{.in_port = kExt, .input = input, .verdict = Action::Kind::kForward, .out_port = kInt, .observe = true,
         .same_node = same_node};
  s.output = [input](const Observed& o) { return ip6ip6Frame(input, o.outer_src6, o.node_ip6, o.flow_label6); };
  return s;
}

// `frame` with IPv6 traffic class `tc` (not covered by any checksum).
Bytes withTrafficClass(Bytes frame, uint8_t tc) {
  const uint32_t w = load32(frame.data() + kEthHeaderLen);
  store32(frame.data() + kEthHeaderLen, (w & 0xf00fffffu) | (uint32_t{tc} << 20));
  return frame;
}

}  // namespace

Bytes clientTcp6(uint16_t client_port, uint8_t flags, size_t payload) {
  return fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).tcp(client_port, 80, flags).payload(payload).build();
}

Bytes nodeTcp6(const Ip6& node_ip, uint16_t snat_port, uint8_t flags, size_t payload) {
  return fromNode6(node_ip).ipv6(node_ip, Topo6::intIp()).tcp(30080, snat_port, flags).payload(payload).build();
}

std::vector<Fixture> ipv6Fixtures() {
  const Mac client = Topo::clientMac();
  const std::vector<std::pair<Ip6, Mac>> client_known = {{Topo6::clientIp(), client}};
  std::vector<Fixture> f;

  // --- Full-NAT IPv6 -> IPv6 ---------------------------------------------------------
  f.push_back({"IPv6 TCP handshake and data through VIP6, replies restored",
               {toNodeStep(clientTcp6(kClientPort, tcp::kSyn), natTcp6(80, tcp::kSyn)),
                toClientStep([](const Observed& o) { return nodeTcp6(o.node_ip6, o.snat_port, tcp::kSyn | tcp::kAckFlag); },
                          restored6(tcp::kSyn | tcp::kAckFlag)),
                [] {
                  Step s = toNodeStep(clientTcp6(kClientPort, tcp::kAckFlag, 100), natTcp6(80, tcp::kAckFlag, 100));
                  s.same_node = true;
                  return s;
                }(),
                toClientStep([](const Observed& o) { return nodeTcp6(o.node_ip6, o.snat_port, tcp::kAckFlag, 1000); },
                          restored6(tcp::kAckFlag, 1000))},
               {},
               client_known});
  f.push_back({"IPv6 UDP through VIP6:53 and back",
               {toNodeStep(fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).udp(5353, 53).payload(40).build(),
                        [](const Observed& o) {
                          return PacketBuilder()
                              .eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
                              .ipv6(Topo6::intIp(), o.node_ip6, 63)
                              .udp(o.snat_port, 30053)
                              .payload(40)
                              .build();
                        }),
                toClientStep(
                    [](const Observed& o) {
                      return fromNode6(o.node_ip6).ipv6(o.node_ip6, Topo6::intIp()).udp(30053, o.snat_port).payload(80).build();
                    },
                    [](const Observed&) {
                      return PacketBuilder()
                          .eth(Topo::extMac(), Topo::clientMac())
                          .ipv6(Topo6::vip(), Topo6::clientIp(), 63)
                          .udp(53, 5353)
                          .payload(80)
                          .build();
                    })},
               {},
               client_known});
  f.push_back({"dual stack: one Service answers on its IPv4 and its IPv6 VIP",
               {toNodeStep(clientTcp6(kClientPort, tcp::kSyn), natTcp6(80, tcp::kSyn)),
                Step{.in_port = kExt, .input = clientTcp(kClientPort, tcp::kSyn), .verdict = Action::Kind::kForward,
                     .out_port = kInt, .flows_after = 2}}});
  f.push_back({"IPv6 extension headers are forwarded as they are (Hop-by-Hop, Destination Options, finished route)",
               {toNodeStep(fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ext6(ipv6::kHopByHop).ext6(ipv6::kDestOpts, 16)
                            .ext6(ipv6::kRouting, 24, 0).tcp(kClientPort, 80, tcp::kSyn).build(),
                        [](const Observed& o) {
                          return PacketBuilder()
                              .eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
                              .ipv6(Topo6::intIp(), o.node_ip6, 63)
                              .ext6(ipv6::kHopByHop).ext6(ipv6::kDestOpts, 16).ext6(ipv6::kRouting, 24, 0)
                              .tcp(o.snat_port, 30080, tcp::kSyn)
                              .build();
                        })}});
  f.push_back({"IPv6 TCP without SYN and no flow", {dropStep(kExt, clientTcp6(kClientPort, tcp::kAckFlag), DropReason::kNoFlow)}});
  f.push_back({"IPv6 reply to SNAT6 without a flow",
               {dropStep(kInt, nodeTcp6(Topo6::nodes()[0], 2000, tcp::kAckFlag), DropReason::kNoFlow)}});
  f.push_back({"IPv6 VIP without that port", {dropStep(kExt, tcp6From(Topo6::clientIp(), 81, tcp::kSyn), DropReason::kNoService)}});
  f.push_back({"IPv6 UDP with a zero checksum is refused (RFC 8200 8.1)",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).udp(5353, 53).l4Checksum(0).payload(8).build(),
                      DropReason::kBadL4Header)}});
  f.push_back({"IPv6 ESP to a VIP is not balanced",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ip6NextHeader(ipv6::kEsp).payload(40).build(),
                      DropReason::kUnsupportedProtocol)}});
  f.push_back({"IPv6 traffic from the node side to VIP6",
               {dropStep(kInt, fromNode6(Topo6::nodes()[0]).ipv6(Topo6::nodes()[0], Topo6::vip()).tcp(1, 80, tcp::kSyn).build(),
                      DropReason::kWrongPort)}});
  f.push_back({"IPv6 to another address is not routed",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), ip6("2001:db8:100::50")).tcp(1, 80, tcp::kSyn).build(),
                      DropReason::kNotForUs)}});
  f.push_back({"IPv6 TCP to the box's own address has no exception path yet",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::extIp()).tcp(1, 22, tcp::kSyn).build(),
                      DropReason::kLocalNoExceptionPath)}});

  // --- Hop limit and martians ---------------------------------------------------------
  f.push_back({"IPv6 hop limit 1 to a VIP", {dropStep(kExt, tcp6From(Topo6::clientIp(), 80, tcp::kSyn, 1), DropReason::kTtlExceeded)}});
  f.push_back({"IPv6 hop limit 0 to a VIP", {dropStep(kExt, tcp6From(Topo6::clientIp(), 80, tcp::kSyn, 0), DropReason::kTtlExceeded)}});
  f.push_back({"IPv6 martian: multicast source", {dropStep(kExt, tcp6From(ip6("ff02::1"), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 martian: loopback source", {dropStep(kExt, tcp6From(ip6("::1"), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 martian: unspecified source", {dropStep(kExt, tcp6From(ip6("::"), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 martian: IPv4-mapped source", {dropStep(kExt, tcp6From(ip6("::ffff:10.100.0.2"), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 martian: source is the VIP", {dropStep(kExt, tcp6From(Topo6::vip(), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 martian: source is the box", {dropStep(kExt, tcp6From(Topo6::extIp(), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 link-local source opens no flow", {dropStep(kExt, tcp6From(ip6("fe80::2"), 80, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"IPv6 multicast destination other than ND",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), ip6("ff02::1")).icmp6Echo(icmp6::kEchoRequest, 1, 1).build(),
                      DropReason::kNotForUs)}});

  // --- Extension-header chains --------------------------------------------------------
  {
    PacketBuilder long_chain = fromClient().ipv6(Topo6::clientIp(), Topo6::vip());
    for (int i = 0; i < 9; ++i) long_chain.ext6(ipv6::kDestOpts);
    f.push_back({"IPv6 chain of nine extension headers", {dropStep(kExt, long_chain.tcp(1, 80, tcp::kSyn).build(), DropReason::kExtHeaderChain)}});
    PacketBuilder eight = fromClient().ipv6(Topo6::clientIp(), Topo6::vip());
    for (int i = 0; i < 8; ++i) eight.ext6(ipv6::kDestOpts);
    f.push_back({"IPv6 chain of eight extension headers is within the bound",
                 {Step{.in_port = kExt, .input = eight.tcp(kClientPort, 80, tcp::kSyn).build(), .verdict = Action::Kind::kForward,
                       .out_port = kInt, .flows_after = 1}}});
  }
  f.push_back({"IPv6 Destination Options of 1024 bytes (past the byte bound)",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ext6(ipv6::kDestOpts, 1024).tcp(1, 80, tcp::kSyn).build(),
                      DropReason::kExtHeaderChain)}});
  f.push_back({"IPv6 Hop-by-Hop after another header (a looping chain)",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ext6(ipv6::kDestOpts).ext6(ipv6::kHopByHop)
                                .tcp(1, 80, tcp::kSyn).build(),
                      DropReason::kExtHeaderChain)}});
  f.push_back({"IPv6 two Fragment headers",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).frag6(0, true, 1).frag6(0, true, 2)
                                .udp(1, 53).payload(16).build(),
                      DropReason::kExtHeaderChain)}});
  f.push_back({"IPv6 jumbogram", {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ext6(ipv6::kHopByHop)
                                                 .tcp(1, 80, tcp::kSyn).ip6PayloadLen(0).build(),
                                      DropReason::kJumbogram)}});
  f.push_back({"IPv6 payload length past the frame",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).tcp(1, 80, tcp::kSyn).ip6PayloadLen(400).build(),
                      DropReason::kTruncated)}});
  f.push_back({"IPv6 version field not 6",
               {dropStep(kExt, fromClient().etherType(kEtherTypeIpv6).payload(60).build(), DropReason::kBadIpHeader)}});
  f.push_back({"IPv6 Routing header with segments left to a VIP",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).ext6(ipv6::kRouting, 24, 1)
                                .tcp(1, 80, tcp::kSyn).build(),
                      DropReason::kRoutingHeader)}});

  // --- Source ranges (/0, /128, other family only) -------------------------------------
  f.push_back({"IPv6 source ranges: the /128 admits exactly its address",
               {Step{.in_port = kExt, .input = tcp6From(Topo6::clientIp(), SvcPorts::kOnlyClient, tcp::kSyn),
                     .verdict = Action::Kind::kForward, .out_port = kInt, .flows_after = 1},
                [] {
                  Step s = dropStep(kExt, tcp6From(ip6("2001:db8:100::3"), SvcPorts::kOnlyClient, tcp::kSyn), DropReason::kSourceDenied);
                  s.flows_after = 1;
                  return s;
                }()}});
  f.push_back({"IPv6 source ranges: ::/0 admits everyone",
               {Step{.in_port = kExt, .input = tcp6From(ip6("2001:db8:ffff::9"), SvcPorts::kAnySource, tcp::kSyn),
                     .verdict = Action::Kind::kForward, .out_port = kInt, .flows_after = 1}}});
  f.push_back({"IPv6 source ranges: a Service listing only IPv4 prefixes admits no IPv6 client",
               {dropStep(kExt, tcp6From(Topo6::clientIp(), SvcPorts::kDocNets, tcp::kSyn), DropReason::kSourceDenied)}});

  // --- Session affinity ClientIP over IPv6 -------------------------------------------
  {
    std::vector<Step> steps;
    for (uint16_t port = 41000; port < 41006; ++port) {
      Step s = toNodeStep(fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).tcp(port, SvcPorts::kAffinityTcp, tcp::kSyn).build(),
                       [port](const Observed& o) {
                         (void)port;
                         return PacketBuilder()
                             .eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
                             .ipv6(Topo6::intIp(), o.node_ip6, 63)
                             .tcp(o.snat_port, SvcPorts::nodePortOf(SvcPorts::kAffinityTcp), tcp::kSyn)
                             .build();
                       });
      s.same_node = port != 41000;
      steps.push_back(std::move(s));
    }
    f.push_back({"IPv6 ClientIP affinity: every connection of a client goes to one node", std::move(steps)});
  }

  // --- Neighbor Discovery -------------------------------------------------------------
  f.push_back({"NS for VIP6 to its solicited-node group is answered (S, O, target link-layer option)",
               {answer6(kExt, nsFromClient(Topo6::vip()), naToClient(Topo6::vip(), Topo6::vip()))}});
  f.push_back({"NS for the external port's address is answered",
               {answer6(kExt, nsFromClient(Topo6::extIp()), naToClient(Topo6::extIp(), Topo6::extIp()))}});
  {
    const Ip6 ll = linkLocalFromMac(Topo::extMac());
    f.push_back({"NS for the port's link-local address (EUI-64 of its MAC) is answered",
                 {answer6(kExt, nsFromClient(ll), naToClient(ll, ll))}});
  }
  {
    const Ip6 node = Topo6::nodes()[0];
    // Unicast NS without a source link-layer option (NUD): the answer goes to the frame's
    // source MAC and, 78 bytes long, has no room for (and no need of) a target option.
    Bytes ns = fromNode6(node).ipv6(node, Topo6::intIp(), 255).ndSolicit(Topo6::intIp(), std::nullopt).build();
    Bytes na = PacketBuilder().eth(Topo::intMac(), Topo6::nodeMac(node)).ipv6(Topo6::intIp(), node, 255)
                   .ndAdvert(Topo6::intIp(), icmp6::kNaSolicited | icmp6::kNaOverride, std::nullopt).build();
    f.push_back({"unicast NS for the SNAT6 address without an option is answered without one", {answer6(kInt, ns, na)}});
  }
  {
    // DAD probe for the VIP: defended with an advertisement to all-nodes (no S flag). The
    // probe carries a nonce option (RFC 7527, as Linux sends), so there is room for the
    // target link-layer option; the nonce is not echoed.
    const Ip6 group = solicitedNode(Topo6::vip());
    Bytes probe = PacketBuilder().eth(Topo::clientMac(), multicastMac(group)).ipv6(ip6("::"), group, 255)
                      .ndSolicit(Topo6::vip(), std::nullopt).build();
    // Append a nonce option (type 14, length 1) by hand.
    Bytes with_nonce(probe.begin(), probe.begin() + 14 + 40 + 24);
    for (uint8_t b : {14, 1, 1, 2, 3, 4, 5, 6}) with_nonce.push_back(std::byte{b});
    store16(with_nonce.data() + 14 + ipv6::kPayloadLen, 32);
    store16(with_nonce.data() + 14 + 40 + 2, 0);
    store16(with_nonce.data() + 14 + 40 + 2,
            [&] {
              uint32_t sum = 0;
              for (unsigned i = 0; i < 8; ++i) sum += group.word(i);
              sum += 32 + kProtoIcmp6;
              return checksumFinish(checksumAdd(std::span<const std::byte>(with_nonce).subspan(54), sum));
            }());
    Bytes na = PacketBuilder().eth(Topo::extMac(), multicastMac(kAllNodes)).ipv6(Topo6::vip(), kAllNodes, 255)
                   .ndAdvert(Topo6::vip(), icmp6::kNaOverride, Topo::extMac()).build();
    f.push_back({"DAD probe for VIP6 is defended with an NA to all-nodes", {answer6(kExt, with_nonce, na)}});
    f.push_back({"DAD probe with a source link-layer option is invalid",
                 {dropStep(kExt, PacketBuilder().eth(Topo::clientMac(), multicastMac(group)).ipv6(ip6("::"), group, 255)
                                  .ndSolicit(Topo6::vip(), Topo::clientMac()).build(),
                        DropReason::kBadNd)}});
  }
  f.push_back({"NS with hop limit 64 (routed) is invalid", {dropStep(kExt, nsFromClient(Topo6::vip(), 64), DropReason::kBadNd)}});
  {
    Bytes bad = nsFromClient(Topo6::vip());
    bad[14 + 40 + 2] ^= std::byte{0x01};
    f.push_back({"NS with a wrong ICMPv6 checksum is invalid", {dropStep(kExt, bad, DropReason::kBadNd)}});
    Bytes zero_opt = nsFromClient(Topo6::vip());
    zero_opt[14 + 40 + 25] = std::byte{0};  // option length 0
    // Keep the checksum right so only the option is wrong: the length byte moved by -1.
    store16(zero_opt.data() + 14 + 40 + 2,
            checksumUpdate16(load16(zero_opt.data() + 14 + 40 + 2), 0x0101, 0x0100));
    f.push_back({"NS with a zero-length option is invalid", {dropStep(kExt, zero_opt, DropReason::kBadNd)}});
  }
  f.push_back({"NS for a multicast target is invalid", {dropStep(kExt, nsFromClient(ip6("ff02::1")), DropReason::kBadNd)}});
  f.push_back({"NS for someone else's address", {dropStep(kExt, nsFromClient(ip6("2001:db8:100::77")), DropReason::kNdNotForUs)}});
  f.push_back({"NS for VIP6 on the internal port is not ours there",
               {dropStep(kInt, PacketBuilder().eth(Topo6::nodeMac(Topo6::nodes()[0]), multicastMac(solicitedNode(Topo6::vip())))
                                .ipv6(Topo6::nodes()[0], solicitedNode(Topo6::vip()), 255)
                                .ndSolicit(Topo6::vip(), Topo6::nodeMac(Topo6::nodes()[0])).build(),
                      DropReason::kNdNotForUs)}});
  f.push_back({"unsolicited NA is taken and learns nothing",
               {Step{.in_port = kExt,
                     .input = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv6(ip6("2001:db8:100::9"), Topo6::extIp(), 255)
                                  .ndAdvert(ip6("2001:db8:100::9"), icmp6::kNaSolicited, Topo::clientMac()).build(),
                     .verdict = Action::Kind::kConsumed}}});
  f.push_back({"multicast NA with the Solicited flag is invalid",
               {dropStep(kExt, PacketBuilder().eth(Topo::clientMac(), multicastMac(kAllNodes)).ipv6(ip6("2001:db8:100::9"), kAllNodes, 255)
                                .ndAdvert(ip6("2001:db8:100::9"), icmp6::kNaSolicited, Topo::clientMac()).build(),
                      DropReason::kBadNd)}});

  // --- ICMPv6 echo --------------------------------------------------------------------
  f.push_back({"ICMPv6 echo to VIP6 is answered",
               {answer6(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).icmp6Echo(icmp6::kEchoRequest, 7, 1).payload(56).build(),
                        PacketBuilder().eth(Topo::extMac(), client).ipv6(Topo6::vip(), Topo6::clientIp(), 64)
                            .icmp6Echo(icmp6::kEchoReply, 7, 1).payload(56).build())}});
  {
    const Ip6 ll = linkLocalFromMac(Topo::intMac());
    const Ip6 node = Topo6::nodes()[1];
    f.push_back({"ICMPv6 echo to the internal port's link-local address is answered",
                 {answer6(kInt, fromNode6(node).ipv6(node, ll).icmp6Echo(icmp6::kEchoRequest, 9, 2).build(),
                          PacketBuilder().eth(Topo::intMac(), Topo6::nodeMac(node)).ipv6(ll, node, 64)
                              .icmp6Echo(icmp6::kEchoReply, 9, 2).build())}});
  }
  f.push_back({"ICMPv6 other than echo to a VIP",
               {dropStep(kExt, fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).icmp6Echo(icmp6::kEchoReply, 7, 1).build(),
                      DropReason::kIcmpUnsupported)}});

  // --- ICMPv6 Packet Too Big, translated to the other side of the flow -----------------
  {
    // The quoted packet: what the box sent, from its Ethernet header's end on.
    auto quote = [](const Bytes& frame) { return Bytes(frame.begin() + 14, frame.end()); };
    const Ip6 router = ip6("2001:db8:100::fe");
    // A router on the client's path could not pass the node's answer (VIP:80 ->
    // client): the node must hear it, about its own packet (node:30080 -> SNAT6:port).
    Step client_side{.in_port = kExt,
                     .make_input =
                         [=](const Observed&) {
                           return fromClient().ipv6(router, Topo6::vip())
                               .icmp6Error(icmp6::kPacketTooBig, 0, 1280, quote(restored6(tcp::kSyn | tcp::kAckFlag)(Observed{})))
                               .build();
                         },
                     .verdict = Action::Kind::kForward,
                     .out_port = kInt,
                     .output = [=](const Observed& o) {
                       const Bytes sent = PacketBuilder().eth(Topo6::nodeMac(o.node_ip6), Topo::intMac())
                                              .ipv6(o.node_ip6, Topo6::intIp(), 63)
                                              .tcp(30080, o.snat_port, tcp::kSyn | tcp::kAckFlag)
                                              .build();
                       return PacketBuilder().eth(Topo::intMac(), Topo6::nodeMac(o.node_ip6))
                           .ipv6(Topo6::intIp(), o.node_ip6, 63)
                           .icmp6Error(icmp6::kPacketTooBig, 0, 1280, quote(sent))
                           .build();
                     },
                     .icmp_errors_translated_after = 1};
    // A router on the node's path could not pass the client's segment (SNAT6:port ->
    // node:30080): the client hears it about VIP6:80.
    Step node_side{.in_port = kInt,
                   .make_input =
                       [=](const Observed& o) {
                         return fromNode6(o.node_ip6).ipv6(ip6("2001:db8:200::fe"), Topo6::intIp())
                             .icmp6Error(icmp6::kPacketTooBig, 0, 1400, quote(natTcp6(80, tcp::kAckFlag, 100)(o)))
                             .build();
                       },
                   .verdict = Action::Kind::kForward,
                   .out_port = kExt,
                   .output = [=](const Observed&) {
                     const Bytes sent = fromClient().ipv6(Topo6::clientIp(), Topo6::vip(), 63)
                                            .tcp(kClientPort, 80, tcp::kAckFlag).payload(100).build();
                     return PacketBuilder().eth(Topo::extMac(), Topo::clientMac())
                         .ipv6(Topo6::vip(), Topo6::clientIp(), 63)
                         .icmp6Error(icmp6::kPacketTooBig, 0, 1400, quote(sent))
                         .build();
                   },
                   .icmp_errors_translated_after = 2};
    f.push_back({"ICMPv6 Packet Too Big about a flow is translated to the other side, both ways",
                 {toNodeStep(clientTcp6(kClientPort, tcp::kSyn), natTcp6(80, tcp::kSyn)), client_side, node_side},
                 {},
                 client_known});
    f.push_back({"ICMPv6 Packet Too Big quoting no flow of ours",
                 {dropStep(kExt, fromClient().ipv6(router, Topo6::vip())
                                  .icmp6Error(icmp6::kPacketTooBig, 0, 1280, quote(restored6(tcp::kAckFlag)(Observed{})))
                                  .build(),
                        DropReason::kNoFlow)}});
    Bytes bad = fromClient().ipv6(router, Topo6::vip())
                    .icmp6Error(icmp6::kPacketTooBig, 0, 1280, quote(restored6(tcp::kAckFlag)(Observed{}))).build();
    bad[14 + 40 + 2] ^= std::byte{0x40};
    f.push_back({"ICMPv6 Packet Too Big with a bad checksum", {dropStep(kExt, bad, DropReason::kIcmpUnsupported)}});
  }

  // --- IPv6 fragments (policy: fwd/processor.cc; IPv6 details in processor6.cc) --------
  {
    constexpr size_t kBig = 3000;
    constexpr uint32_t kId = 0xabcdef01;
    const std::vector<Bytes> out = fragmentIpv6(clientUdp6Datagram(kBig), 1448, kId);
    std::vector<Step> steps;
    for (size_t k = 0; k < out.size(); ++k) {
      // The worker's first fragmented IPv6 datagram leaves with identification 0.
      steps.push_back(k == 0 ? toNodeStep(out[k], natUdp6Fragment(kBig, 0, k)) : laterToNode6(out[k], natUdp6Fragment(kBig, 0, k)));
    }
    f.push_back({"IPv6 UDP fragments follow the first fragment to its node, renumbered", std::move(steps)});
    f.push_back({"an IPv6 fragment that arrives before its first fragment is dropped",
                 {dropStep(kExt, out[1], DropReason::kFragmentNoFlow), toNodeStep(out[0], natUdp6Fragment(kBig, 0, 0)),
                  laterToNode6(out[2], natUdp6Fragment(kBig, 0, 2)), laterToNode6(out[1], natUdp6Fragment(kBig, 0, 1))}});
    Bytes odd = out[0];
    // MF with 1447 bytes: not a multiple of 8.
    store16(odd.data() + 14 + ipv6::kPayloadLen, static_cast<uint16_t>(load16(odd.data() + 14 + ipv6::kPayloadLen) - 1));
    f.push_back({"IPv6 fragment with MF and a payload that is not a multiple of 8", {dropStep(kExt, odd, DropReason::kFragmentMalformed)}});
    f.push_back({"IPv6 ICMPv6 fragments are not balanced",
                 {dropStep(kExt, fragmentIpv6(fromClient().ipv6(Topo6::clientIp(), Topo6::vip())
                                               .icmp6Echo(icmp6::kEchoRequest, 1, 1).payload(3000).build(), 1448, 5)[0],
                        DropReason::kFragment)}});
    f.push_back({"an atomic IPv6 fragment is a whole datagram",
                 {Step{.in_port = kExt,
                       .input = fromClient().ipv6(Topo6::clientIp(), Topo6::vip()).frag6(0, false, 3).udp(5353, 53).payload(20).build(),
                       .verdict = Action::Kind::kForward, .out_port = kInt, .flows_after = 1}}});
  }
  // --- IPv6 tunnel mode (IPv6-in-IPv6, DSR; policy: processor6.cc) ----------------------
  {
    const uint8_t kAck6 = tcp::kAckFlag, kPshAck6 = tcp::kPsh | tcp::kAckFlag;
    f.push_back({"IPv6 tunnel: a connection's segments leave IPv6-in-IPv6 to one node, inner packet untouched",
                 {tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kSyn), false),
                  tunnelStep6(clientTunnelTcp6(kClientPort, kAck6)),
                  tunnelStep6(clientTunnelTcp6(kClientPort, kPshAck6, 700)),
                  tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kFin | kAck6))}});
    f.push_back({"IPv6 tunnel: the traffic class is copied to the outer header",
                 {tunnelStep6(withTrafficClass(clientTunnelTcp6(kClientPort, tcp::kSyn), 0xb8), false)}});
    f.push_back({"IPv6 tunnel: a hop limit of 1 is delivered, not decremented (the box owns the VIP)",
                 {tunnelStep6(fromClient().ipv6(Topo6::clientIp(), Topo6::tunnelVip(), 1).tcp(kClientPort, 80, tcp::kSyn).build(),
                              false)}});
    {
      std::vector<Step> steps;
      for (int i = 0; i < 3; ++i) {
        steps.push_back(tunnelStep6(fromClient().ipv6(Topo6::clientIp(), Topo6::tunnelVip()).udp(5353, 53).payload(40).build(),
                                    i != 0));
      }
      f.push_back({"IPv6 tunnel: UDP datagrams of a flow share node, outer source and flow label", std::move(steps)});
    }
    f.push_back({"IPv6 tunnel: a mid-stream ACK without a flow goes to the Maglev choice (another box's flow)",
                 {tunnelStep6(clientTunnelTcp6(kClientPort, kAck6), false)}});
    {
      Step rst = tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kRst), false);
      rst.flows_after = 0;
      f.push_back({"IPv6 tunnel: a RST without a flow is forwarded and creates nothing", {rst}});
    }
    {
      Step denied = dropStep(kExt, fromClient().ipv6(ip6("2001:db8:100::7"), Topo6::tunnelVip())
                                    .tcp(kClientPort, SvcPorts::kOnlyClient, tcp::kSyn).build(),
                          DropReason::kSourceDenied);
      denied.flows_after = 0;
      Step allowed = tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kSyn, 0, SvcPorts::kOnlyClient), false);
      allowed.flows_after = 1;
      f.push_back({"IPv6 tunnel: source ranges deny a new flow as in full-NAT, and allow the listed client",
                   {denied, allowed}});
    }
    {
      std::vector<Step> steps;
      for (uint16_t port = 41000; port < 41006; ++port) {
        steps.push_back(tunnelStep6(clientTunnelTcp6(port, tcp::kSyn, 0, SvcPorts::kAffinityTcp), port != 41000));
      }
      f.push_back({"IPv6 tunnel: ClientIP affinity keeps every connection of a client on one node", std::move(steps)});
    }
    f.push_back({"IPv6 tunnel and IPv6 full-NAT in one snapshot: each VIP keeps its mode",
                 {tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kSyn), false),
                  toNodeStep(clientTcp6(kClientPort, tcp::kSyn), natTcp6(80, tcp::kSyn))}});
    {
      // Internal MTU 1500: inner packets up to 1460 bytes fit; 1500 bytes get PTB 1460,
      // quoting the first 1232 bytes (the answer is exactly 1280 bytes of IPv6).
      const Bytes big = clientTunnelTcp6(kClientPort, kPshAck6, 1440);
      Step answer{.in_port = kExt, .input = big, .verdict = Action::Kind::kForward, .out_port = kExt,
                  .output = [big](const Observed&) { return packetTooBig6Frame(big, Topo6::tunnelVip(), 1460); }};
      const Bytes fits = clientTunnelTcp6(kClientPort, kPshAck6, 1400);  // 1460 + 40 = 1500
      f.push_back({"IPv6 tunnel: a packet too big for the tunnel is answered with Packet Too Big, MTU 1460",
                   {tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kSyn), false), answer, tunnelStep6(fits)}});
      Step first{.in_port = kExt, .input = big, .verdict = Action::Kind::kForward, .out_port = kExt,
                 .output = [big](const Observed&) { return packetTooBig6Frame(big, Topo6::tunnelVip(), 1460); },
                 .flows_after = 0};
      f.push_back({"IPv6 tunnel: a too-big first packet is answered and leaves no flow", {first}});
    }
    {
      // A tunnel-mode flow's node answers the client directly: a Packet Too Big about
      // VIP6 -> client quotes a packet the box never sent (the IPv4 twin is in fixtures.cc).
      const Bytes node_answer = PacketBuilder().eth(Topo::extMac(), Topo::clientMac())
                                    .ipv6(Topo6::tunnelVip(), Topo6::clientIp(), 63)
                                    .tcp(80, kClientPort, tcp::kSyn | tcp::kAckFlag)
                                    .build();
      const Bytes ptb = fromClient().ipv6(ip6("2001:db8:100::fe"), Topo6::tunnelVip())
                            .icmp6Error(icmp6::kPacketTooBig, 0, 1280, Bytes(node_answer.begin() + 14, node_answer.end()))
                            .build();
      f.push_back({"IPv6 tunnel: Packet Too Big about a tunnel-mode flow is not translated",
                   {tunnelStep6(clientTunnelTcp6(kClientPort, tcp::kSyn), false),
                    dropStep(kExt, ptb, DropReason::kIcmpUnsupported)}});
    }
    {
      const Bytes to_source = fromNode6(Topo6::nodes()[0])
                                  .ipv6(Topo6::nodes()[0], ip6("2001:db8:200::107"))
                                  .udp(4000, 4001)
                                  .build();
      f.push_back({"IPv6 tunnel: a packet to an outer source is counted apart",
                   {dropStep(kInt, to_source, DropReason::kToTunnelSource)}});
    }
    {
      constexpr size_t kBig = 3000;
      const std::vector<Bytes> frags =
          fragmentIpv6(fromClient().ipv6(Topo6::clientIp(), Topo6::tunnelVip()).udp(5353, 53).payload(kBig).build(),
                       1400, 0x51525354);  // 1448-byte fragments: + 40 fits the 1500 MTU
      std::vector<Step> steps;
      for (size_t k = 0; k < frags.size(); ++k) steps.push_back(tunnelStep6(frags[k], k != 0));
      f.push_back({"IPv6 tunnel: fragments follow the first fragment's node, outer source and label, unchanged",
                   std::move(steps)});
    }
  }

  return f;
}

}  // namespace ng::test
