#include "test/dataplane/fwd/fixtures.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/encap.h"
#include "dataplane/pkt/headers.h"

namespace ng::test {

using fwd::Action;
using fwd::DropReason;
using namespace ng::pkt;

PacketBuilder fromClient() { return PacketBuilder().eth(Topo::clientMac(), Topo::extMac()); }

Step dropStep(uint8_t port, Bytes input, DropReason reason) {
  return Step{.in_port = port, .input = std::move(input), .drop = reason};
}

Step toNodeStep(Bytes input, std::function<Bytes(const Observed&)> expected) {
  return Step{.in_port = kExt, .input = std::move(input), .verdict = Action::Kind::kForward,
              .out_port = kInt, .output = std::move(expected), .observe = true};
}

Step toClientStep(std::function<Bytes(const Observed&)> input, std::function<Bytes(const Observed&)> expected) {
  return Step{.in_port = kInt, .make_input = std::move(input), .verdict = Action::Kind::kForward,
              .out_port = kExt, .output = std::move(expected)};
}

namespace {

constexpr uint16_t kClientPort = 40000;
constexpr Mac kZeroMac{};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::vector<uint32_t> nodeIps() { return {ip("10.200.0.11"), ip("10.200.0.12"), ip("10.200.0.13")}; }

}  // namespace

fwd::ServicePort fixtureServicePort(uint16_t port, uint8_t proto, uint16_t node_port) {
  fwd::ServicePort sp{.vip = Topo::vip(), .port = port, .proto = proto};
  std::vector<lb::MaglevBackend> ids;
  for (uint32_t node : nodeIps()) {
    // Stats ids as the compiler would give them: distinct per (service port, node).
    const auto stats_id = static_cast<uint32_t>(node_port * 4 + sp.backends.size() + 1);
    sp.backends.push_back(fwd::Backend{.node_ip = node, .node_port = node_port, .weight = 1, .stats_id = stats_id});
    ids.push_back(lb::MaglevBackend{.id = node, .weight = 1});
  }
  sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
  return sp;
}

namespace {

Step arpStep(uint8_t port, uint32_t sender, const Mac& sender_mac, uint32_t target) {
  return Step{.in_port = port,
              .input = PacketBuilder()
                           .eth(sender_mac, kBroadcast)
                           .arp(arp::kRequest, sender_mac, sender, kZeroMac, target)
                           .build()};
}

std::function<Bytes(const Observed&)> nodeReply(uint8_t flags, size_t payload = 0) {
  return [=](const Observed& o) { return nodeTcp(o.node_ip, o.snat_port, flags, payload); };
}

std::function<Bytes(const Observed&)> natSyn(uint8_t flags, size_t payload = 0) {
  return [=](const Observed& o) {
    return PacketBuilder()
        .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
        .ipv4(Topo::intIp(), o.node_ip, 63)
        .tcp(o.snat_port, 30080, flags)
        .payload(payload)
        .build();
  };
}

// The client's segment to VIP:`port` as it leaves for the chosen node's nodePort.
std::function<Bytes(const Observed&)> natTcpTo(uint16_t port, uint8_t flags) {
  return [=](const Observed& o) {
    return PacketBuilder()
        .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
        .ipv4(Topo::intIp(), o.node_ip, 63)
        .tcp(o.snat_port, SvcPorts::nodePortOf(port), flags)
        .build();
  };
}

std::function<Bytes(const Observed&)> natUdpTo(uint16_t port, size_t payload) {
  return [=](const Observed& o) {
    return PacketBuilder()
        .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
        .ipv4(Topo::intIp(), o.node_ip, 63)
        .udp(o.snat_port, SvcPorts::nodePortOf(port))
        .payload(payload)
        .build();
  };
}

Bytes tcpFrom(uint32_t src, uint16_t src_port, uint16_t port, uint8_t flags) {
  return fromClient().ipv4(src, Topo::vip()).tcp(src_port, port, flags).build();
}

// A flow from `src` to VIP:`port` that must be allowed: forwarded to a node, one flow more.
Step allowedStep(uint32_t src, uint16_t port, uint32_t flows_after) {
  Step s = toNodeStep(tcpFrom(src, kClientPort, port, tcp::kSyn), natTcpTo(port, tcp::kSyn));
  s.flows_after = flows_after;
  return s;
}

// A frame from `src` to VIP:`port` refused by the source ranges: no flow is created.
Step deniedStep(uint32_t src, uint16_t port, uint8_t flags, uint32_t flows_after) {
  Step s = dropStep(kExt, tcpFrom(src, kClientPort, port, flags), DropReason::kSourceDenied);
  s.flows_after = flows_after;
  return s;
}

Step sameNodeStep(Step s) {
  s.same_node = true;
  return s;
}

std::function<Bytes(const Observed&)> restored(uint8_t flags, size_t payload = 0) {
  return [=](const Observed&) {
    return PacketBuilder()
        .eth(Topo::extMac(), Topo::clientMac())
        .ipv4(Topo::vip(), Topo::clientIp(), 63)
        .tcp(80, kClientPort, flags)
        .payload(payload)
        .build();
  };
}

// --- Fragments ------------------------------------------------------------------------

// The client's UDP datagram to VIP:53 (IP id `id`), whole, as its kernel builds it.
Bytes clientUdpDatagram(size_t payload, uint16_t id) {
  return fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipId(id).udp(5353, 53).payload(payload).build();
}

// Fragment `k` of that datagram as translated toward the chosen node's nodePort, leaving
// with IP id `id`.
std::function<Bytes(const Observed&)> natUdpFragment(size_t payload, uint16_t id, size_t k) {
  return [=](const Observed& o) {
    return fragmentIpv4(PacketBuilder()
                            .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                            .ipv4(Topo::intIp(), o.node_ip, 63)
                            .ipId(id)
                            .udp(o.snat_port, 30053)
                            .payload(payload)
                            .build(),
                        1480)[k];
  };
}

// The node's answer to the SNAT address:port, whole.
Bytes nodeUdpDatagram(const Observed& o, size_t payload, uint16_t id) {
  return PacketBuilder()
      .eth(Topo::nodeMac(o.node_ip), Topo::intMac())
      .ipv4(o.node_ip, Topo::intIp())
      .ipId(id)
      .udp(30053, o.snat_port)
      .payload(payload)
      .build();
}

// That answer as the client must get it: from VIP:53.
Bytes restoredUdpDatagram(size_t payload, uint16_t id) {
  return PacketBuilder()
      .eth(Topo::extMac(), Topo::clientMac())
      .ipv4(Topo::vip(), Topo::clientIp(), 63)
      .ipId(id)
      .udp(53, 5353)
      .payload(payload)
      .build();
}

// A later fragment (no ports to observe) forwarded to the node.
Step laterToNode(Bytes input, std::function<Bytes(const Observed&)> expected) {
  return Step{.in_port = kExt, .input = std::move(input), .verdict = Action::Kind::kForward,
              .out_port = kInt, .output = std::move(expected)};
}

}  // namespace

Mac Topo6::nodeMac(const pkt::Ip6& node) {
  return Mac{0x02, 0, 0, 0, 0x06, static_cast<uint8_t>(node.lo & 0xff)};
}

fwd::ServicePort6 fixtureServicePort6(uint16_t port, uint8_t proto, uint16_t node_port) {
  fwd::ServicePort6 sp{.vip = Topo6::vip(), .port = port, .proto = proto};
  std::vector<lb::MaglevBackend> ids;
  for (const pkt::Ip6& node : Topo6::nodes()) {
    // Distinct from the IPv4 backends' ids (the compiler gives each family its own).
    const auto stats_id = static_cast<uint32_t>(node_port * 4 + sp.backends.size() + 1 + 0x40000);
    sp.backends.push_back(fwd::Backend6{.node_ip = node, .node_port = node_port, .weight = 1, .stats_id = stats_id});
    ids.push_back(lb::MaglevBackend{.id = static_cast<uint32_t>(node.lo), .weight = 1});
  }
  sp.maglev = std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
  return sp;
}

Mac Topo::nodeMac(uint32_t node_ip) {
  return Mac{0x02, 0, 0, 0, 0x02, static_cast<uint8_t>(node_ip & 0xff)};
}

// --- Exception path (fwd/exception.h) ----------------------------------------------------

namespace {

Step kernelStep(uint8_t port, Bytes input) {
  return Step{.in_port = port, .input = std::move(input), .verdict = Action::Kind::kToKernel, .out_port = port};
}

PacketBuilder fromNode(uint32_t node) { return PacketBuilder().eth(Topo::nodeMac(node), Topo::intMac()); }

void appendExceptionFixtures(std::vector<Fixture>& f) {
  const uint32_t n1 = ip("10.200.0.11");
  auto on = [](Fixture fx) {
    fx.exception_path = true;
    return fx;
  };
  f.push_back(on({"exception: TCP and UDP to the box's external address go to its kernel, untouched",
                  {kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(kClientPort, 22, tcp::kSyn).build()),
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(kClientPort, 22, tcp::kAckFlag)
                                        .payload(100).build()),
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).udp(5353, 161).payload(40).build()),
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).ipProto(89).payload(40).build())}}));
  f.push_back(on({"exception: echo requests to the box are answered by the worker; other ICMP goes to the kernel",
                  {Step{.in_port = kExt,
                        .input = fromClient().ipv4(Topo::clientIp(), Topo::extIp()).icmpEcho(icmp::kEchoRequest, 7, 1).payload(32).build(),
                        .verdict = Action::Kind::kForward, .out_port = kExt,
                        .output = [](const Observed&) {
                          return PacketBuilder().eth(Topo::extMac(), Topo::clientMac()).ipv4(Topo::extIp(), Topo::clientIp())
                              .icmpEcho(icmp::kEchoReply, 7, 1).payload(32).build();
                        }},
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).icmpEcho(icmp::kEchoReply, 9, 1).payload(32).build()),
                   kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).icmpEcho(icmp::kEchoReply, 9, 2).build()),
                   kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).icmpEcho(3, 0, 0).payload(28).build())}}));
  f.push_back(on({"exception: VIP traffic never goes to the kernel",
                  {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).tcp(kClientPort, 22, tcp::kSyn).build(),
                            DropReason::kNoService),
                   dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipProto(47).payload(24).build(),
                            DropReason::kUnsupportedProtocol),
                   dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).icmpEcho(13, 7, 1).build(),
                            DropReason::kIcmpUnsupported),
                   dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).tcp(kClientPort, 80, tcp::kAckFlag).build(),
                            DropReason::kNoFlow),
                   dropStep(kInt, fromNode(n1).ipv4(n1, Topo::vip()).tcp(1234, 80, tcp::kSyn).build(), DropReason::kWrongPort)}}));
  {
    // The SNAT address is the internal port's address: a node's packet to it is a full-NAT
    // reply when its port is one SNAT hands out (1024..32767 here), else the kernel's.
    Fixture fx = on({"exception: on a shared SNAT/port address, SNAT's ports are full-NAT replies, the rest the kernel's",
                     {dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(10256, 2000, tcp::kSyn | tcp::kAckFlag).build(),
                               DropReason::kNoFlow),
                      dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(10256, 32767, tcp::kAckFlag).build(),
                               DropReason::kNoFlow),
                      dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).udp(30053, 1024).payload(8).build(),
                               DropReason::kNoFlow),
                      kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(10256, 32768, tcp::kSyn | tcp::kAckFlag).build()),
                      kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(30080, 45000, tcp::kAckFlag).payload(200).build()),
                      kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(179, 179, tcp::kSyn).build())}});
    fx.snat_port_max = 32767;
    f.push_back(std::move(fx));
  }
  {
    // A real flow: SYN through the VIP, the node's answer to its SNAT port comes back to
    // the client even though the kernel could have had that address.
    Fixture fx = on({"exception: a full-NAT reply with a flow is forwarded, never the kernel's",
                     {toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn)),
                      toClientStep(nodeReply(tcp::kSyn | tcp::kAckFlag), restored(tcp::kSyn | tcp::kAckFlag))},
                     {{Topo::clientIp(), Topo::clientMac()}}});
    fx.snat_port_max = 32767;
    f.push_back(std::move(fx));
  }
  f.push_back({"exception: without an exception path a SNAT address's free ports stay no_flow",
               {dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).tcp(10256, 45000, tcp::kSyn | tcp::kAckFlag).build(),
                         DropReason::kNoFlow),
                dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).icmpEcho(3, 0, 0).payload(28).build(),
                         DropReason::kIcmpUnsupported)}});
  f.push_back(on({"exception: ARP replies to the box's address are learned and handed to the kernel; requests answered",
                  {kernelStep(kInt, PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                                        .arp(arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), Topo::intIp()).build()),
                   Step{.in_port = kInt,
                        .input = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                                     .arp(arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), ip("10.200.0.77")).build(),
                        .verdict = Action::Kind::kConsumed},
                   Step{.in_port = kExt,
                        .input = PacketBuilder().eth(Topo::clientMac(), kBroadcast)
                                     .arp(arp::kRequest, Topo::clientMac(), Topo::clientIp(), kZeroMac, Topo::extIp()).build(),
                        .verdict = Action::Kind::kForward, .out_port = kExt,
                        .output = [](const Observed&) {
                          return PacketBuilder().eth(Topo::extMac(), Topo::clientMac())
                              .arp(arp::kReply, Topo::extMac(), Topo::extIp(), Topo::clientMac(), Topo::clientIp()).build();
                        }}}}));
  f.push_back({"exception: without an exception path ARP replies are only learned",
               {Step{.in_port = kInt,
                     .input = PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                                  .arp(arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), Topo::intIp()).build(),
                     .verdict = Action::Kind::kConsumed}}});
  f.push_back(on({"exception: martian sources to the box are dropped, not handed to the kernel",
                  {dropStep(kExt, fromClient().ipv4(ip("127.0.0.1"), Topo::extIp()).tcp(1, 22, tcp::kSyn).build(), DropReason::kMartian),
                   dropStep(kExt, fromClient().ipv4(Topo::vip(), Topo::extIp()).tcp(80, 22, tcp::kSyn).build(), DropReason::kMartian),
                   dropStep(kExt, fromClient().ipv4(Topo::intIp(), Topo::extIp()).ipFrag(0x2000).udp(1, 2).payload(64).build(),
                            DropReason::kMartian)}}));
  f.push_back(on({"exception: fragments for the box's (unshared) address go to the kernel, which reassembles",
                  {kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).ipId(77).ipFrag(0x2000).udp(5353, 161).payload(64).build()),
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).ipId(77).ipFrag(9).ipProto(kProtoUdp).payload(40).build()),
                   kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).ipId(78).ipFrag(0x2000).ipProto(kProtoIcmp).payload(64).build())}}));
  {
    // On the address shared with SNAT, a first fragment's port decides; later fragments
    // follow their first one (to the kernel), or find nothing (a full-NAT reply without a flow).
    Fixture fx = on({"exception: fragments on a shared SNAT/port address follow their first fragment",
                     {kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).ipId(90).ipFrag(0x2000).udp(30053, 45000)
                                           .payload(64).build()),
                      kernelStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).ipId(90).ipFrag(9).ipProto(kProtoUdp)
                                           .payload(40).build()),
                      dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).ipId(91).ipFrag(0x2000).udp(30053, 2000)
                                         .payload(64).build(), DropReason::kNoFlow),
                      dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).ipId(91).ipFrag(9).ipProto(kProtoUdp)
                                         .payload(40).build(), DropReason::kFragmentNoFlow),
                      dropStep(kInt, fromNode(n1).ipv4(n1, Topo::intIp()).ipId(90).ipFrag(9).ipProto(kProtoUdp)
                                         .payload(40).build(), DropReason::kFragmentNoFlow)}});
    fx.snat_port_max = 32767;
    f.push_back(std::move(fx));
  }
  {
    // Burst 2, 1 frame/s: two pass, the next ones (1 ms apart) are over the rate.
    Fixture fx = on({"exception: the kernel's share is rate-limited per worker",
                     {kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(40001, 22, tcp::kSyn).build()),
                      kernelStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(40002, 22, tcp::kSyn).build()),
                      dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(40003, 22, tcp::kSyn).build(),
                               DropReason::kExceptionRateLimit),
                      dropStep(kInt, PacketBuilder().eth(Topo::nodeMac(n1), Topo::intMac())
                                         .arp(arp::kReply, Topo::nodeMac(n1), n1, Topo::intMac(), Topo::intIp()).build(),
                               DropReason::kExceptionRateLimit)}});
    fx.exception_rate = 1;
    fx.exception_burst = 2;
    f.push_back(std::move(fx));
  }
}

}  // namespace

Env makeEnv() {
  Env env;
  env.ports = {
      fwd::PortInfo{.role = fwd::PortRole::kExternal, .mac = Topo::extMac(), .address = Topo::extIp(),
                    .prefix_len = 24, .address6 = Topo6::extIp(), .prefix_len6 = 64, .gateway6 = Topo6::gateway()},
      fwd::PortInfo{.role = fwd::PortRole::kInternal, .mac = Topo::intMac(), .address = Topo::intIp(),
                    .prefix_len = 24, .address6 = Topo6::intIp(), .prefix_len6 = 64},
  };
  auto snap = std::make_unique<fwd::ForwardingSnapshot>();
  snap->generation = 1;
  snap->service_ports.push_back(fixtureServicePort(80, kProtoTcp, 30080));
  snap->service_ports.push_back(fixtureServicePort(53, kProtoUdp, 30053));
  auto ranged = [&](uint16_t port, std::vector<std::pair<const char*, uint8_t>> prefixes) {
    fwd::ServicePort sp = fixtureServicePort(port, kProtoTcp, SvcPorts::nodePortOf(port));
    std::vector<fwd::SourceRange> ranges;
    for (const auto& [address, length] : prefixes) ranges.push_back(fwd::prefixRange(ip(address), length));
    sp.source_ranges = fwd::mergeSourceRanges(std::move(ranges));
    snap->service_ports.push_back(std::move(sp));
  };
  ranged(SvcPorts::kOnlyClient, {{"10.100.0.2", 32}});
  ranged(SvcPorts::kDocNets, {{"203.0.113.0", 24}, {"198.51.100.0", 24}});
  ranged(SvcPorts::kAnySource, {{"0.0.0.0", 0}});
  for (const auto& [port, proto] : {std::pair{SvcPorts::kAffinityTcp, kProtoTcp}, std::pair{SvcPorts::kAffinityUdp, kProtoUdp}}) {
    fwd::ServicePort sp = fixtureServicePort(port, proto, SvcPorts::nodePortOf(port));
    sp.affinity_timeout_ms = SvcPorts::kAffinityTimeoutMs;
    snap->service_ports.push_back(std::move(sp));
  }
  // Tunnel mode next to full-NAT in the same snapshot.
  for (const auto& [port, proto, node_port] :
       {std::tuple{uint16_t{80}, kProtoTcp, uint16_t{30080}}, std::tuple{uint16_t{53}, kProtoUdp, uint16_t{30053}},
        std::tuple{SvcPorts::kOnlyClient, kProtoTcp, SvcPorts::nodePortOf(SvcPorts::kOnlyClient)},
        std::tuple{SvcPorts::kAffinityTcp, kProtoTcp, SvcPorts::nodePortOf(SvcPorts::kAffinityTcp)}}) {
    fwd::ServicePort sp = fixtureServicePort(port, proto, node_port);
    sp.vip = Topo::tunnelVip();
    sp.mode = fwd::ForwardingMode::kTunnel;
    if (port == SvcPorts::kOnlyClient) sp.source_ranges = {fwd::prefixRange(Topo::clientIp(), 32)};
    if (port == SvcPorts::kAffinityTcp) sp.affinity_timeout_ms = SvcPorts::kAffinityTimeoutMs;
    snap->service_ports.push_back(std::move(sp));
  }
  snap->tunnel = fwd::TunnelSettings{.source_base = Topo::tunnelSourceFirst(), .source_count = Topo::kTunnelSources,
                                     .icmp_rate = 100, .icmp_burst = 20};
  snap->snat_addresses = {Topo::intIp()};
  for (uint32_t node : nodeIps()) {
    snap->resolve_targets.push_back(node);
    snap->static_neighbors.push_back(fwd::StaticNeighbor{.ip = node, .mac = Topo::nodeMac(node)});
  }
  // Dual stack: the same Service ports on the IPv6 VIP.
  snap->service_ports6.push_back(fixtureServicePort6(80, kProtoTcp, 30080));
  snap->service_ports6.push_back(fixtureServicePort6(53, kProtoUdp, 30053));
  auto ranged6 = [&](uint16_t port, std::vector<std::pair<const char*, uint8_t>> prefixes) {
    fwd::ServicePort6 sp = fixtureServicePort6(port, kProtoTcp, SvcPorts::nodePortOf(port));
    std::vector<fwd::SourceRange6> ranges;
    for (const auto& [address, length] : prefixes) ranges.push_back(fwd::prefixRange6(ip6(address), length));
    sp.source_ranges = fwd::mergeSourceRanges6(std::move(ranges));
    sp.restrict_sources = true;
    snap->service_ports6.push_back(std::move(sp));
  };
  ranged6(SvcPorts::kOnlyClient, {{"2001:db8:100::2", 128}});
  ranged6(SvcPorts::kDocNets, {});  // the Service lists IPv4 prefixes only
  ranged6(SvcPorts::kAnySource, {{"::", 0}});
  {
    fwd::ServicePort6 sp = fixtureServicePort6(SvcPorts::kAffinityTcp, kProtoTcp, SvcPorts::nodePortOf(SvcPorts::kAffinityTcp));
    sp.affinity_timeout_ms = SvcPorts::kAffinityTimeoutMs;
    snap->service_ports6.push_back(std::move(sp));
  }
  // IPv6 tunnel mode next to IPv6 full-NAT.
  for (const auto& [port, proto, node_port] :
       {std::tuple{uint16_t{80}, kProtoTcp, uint16_t{30080}}, std::tuple{uint16_t{53}, kProtoUdp, uint16_t{30053}},
        std::tuple{SvcPorts::kOnlyClient, kProtoTcp, SvcPorts::nodePortOf(SvcPorts::kOnlyClient)},
        std::tuple{SvcPorts::kAffinityTcp, kProtoTcp, SvcPorts::nodePortOf(SvcPorts::kAffinityTcp)}}) {
    fwd::ServicePort6 sp = fixtureServicePort6(port, proto, node_port);
    sp.vip = Topo6::tunnelVip();
    sp.mode = fwd::ForwardingMode::kTunnel;
    if (port == SvcPorts::kOnlyClient) {
      sp.source_ranges = {fwd::prefixRange6(Topo6::clientIp(), 128)};
      sp.restrict_sources = true;
    }
    if (port == SvcPorts::kAffinityTcp) sp.affinity_timeout_ms = SvcPorts::kAffinityTimeoutMs;
    snap->service_ports6.push_back(std::move(sp));
  }
  snap->tunnel.source6_base = Topo6::tunnelSourceFirst();
  snap->tunnel.source6_count = Topo6::kTunnelSources;
  snap->snat_addresses6 = {Topo6::intIp()};
  for (const pkt::Ip6& node : Topo6::nodes()) {
    snap->resolve_targets6.push_back(node);
    snap->static_neighbors6.push_back(fwd::StaticNeighbor6{.ip = node, .mac = Topo6::nodeMac(node)});
  }
  snap->finalize();
  env.snapshot = std::move(snap);
  return env;
}

void applyFixtureSettings(const Fixture& fx, Env& env) {
  for (fwd::PortInfo& port : env.ports) port.exception_path = fx.exception_path;
}

void applyFixtureSettings(const Fixture& fx, fwd::WorkerContext& ctx) {
  ctx.exception.configure(fx.exception_rate, fx.exception_burst, 0);
  ctx.snat.setPortRange(lb::SnatAllocator::kPortMin, fx.snat_port_max);
}

Bytes clientTcp(uint16_t client_port, uint8_t flags, size_t payload) {
  return fromClient().ipv4(Topo::clientIp(), Topo::vip()).tcp(client_port, 80, flags).payload(payload).build();
}

Bytes nodeTcp(uint32_t node_ip, uint16_t snat_port, uint8_t flags, size_t payload) {
  return PacketBuilder()
      .eth(Topo::nodeMac(node_ip), Topo::intMac())
      .ipv4(node_ip, Topo::intIp())
      .tcp(30080, snat_port, flags)
      .payload(payload)
      .build();
}

Bytes nodeUdp(uint32_t node_ip, uint16_t snat_port, size_t payload) {
  return PacketBuilder()
      .eth(Topo::nodeMac(node_ip), Topo::intMac())
      .ipv4(node_ip, Topo::intIp())
      .udp(30053, snat_port)
      .payload(payload)
      .build();
}

Bytes clientTunnelTcp(uint16_t client_port, uint8_t flags, size_t payload, uint16_t port) {
  return fromClient()
      .ipv4(Topo::clientIp(), Topo::tunnelVip())
      .ipFrag(0x4000)
      .tcp(client_port, port, flags)
      .payload(payload)
      .build();
}

Bytes ipipFrame(const Bytes& inner, uint32_t outer_src, uint32_t node, uint16_t outer_id) {
  const size_t inner_len = load16(inner.data() + kEthHeaderLen + ipv4::kTotalLen);
  Bytes out(kEthHeaderLen + 20);
  storeMac(out.data(), Topo::nodeMac(node));
  storeMac(out.data() + 6, Topo::intMac());
  store16(out.data() + 12, kEtherTypeIpv4);
  std::byte* h = out.data() + kEthHeaderLen;
  h[0] = std::byte{0x45};
  h[1] = inner[kEthHeaderLen + 1];
  store16(h + 2, static_cast<uint16_t>(inner_len + 20));
  store16(h + 4, outer_id);
  store16(h + 6, load16(inner.data() + kEthHeaderLen + 6) & 0x4000);
  h[8] = std::byte{64};
  h[9] = std::byte{4};
  store32(h + 12, outer_src);
  store32(h + 16, node);
  // RFC 1071 by hand: sum of the ten 16-bit words, carries folded, complemented.
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += load16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  store16(h + 10, static_cast<uint16_t>(~sum));
  out.insert(out.end(), inner.begin() + kEthHeaderLen, inner.begin() + static_cast<ptrdiff_t>(kEthHeaderLen + inner_len));
  return out;
}

Bytes fragNeededFrame(const Bytes& offending, uint32_t from, uint16_t mtu) {
  const std::byte* ip_in = offending.data() + kEthHeaderLen;
  const size_t ihl = (std::to_integer<size_t>(ip_in[0]) & 0x0f) * 4;
  const size_t quote = std::min<size_t>(ihl + 8, load16(ip_in + 2));
  Bytes out(kEthHeaderLen + 28);
  storeMac(out.data(), loadMac(offending.data() + 6));
  storeMac(out.data() + 6, Topo::extMac());
  store16(out.data() + 12, kEtherTypeIpv4);
  std::byte* h = out.data() + kEthHeaderLen;
  h[0] = std::byte{0x45};
  h[1] = std::byte{0xc0};
  store16(h + 2, static_cast<uint16_t>(28 + quote));
  h[8] = std::byte{64};
  h[9] = std::byte{1};
  store32(h + 12, from);
  store32(h + 16, load32(ip_in + 12));
  std::byte* icmp_hdr = h + 20;
  icmp_hdr[0] = std::byte{3};
  icmp_hdr[1] = std::byte{4};
  store16(icmp_hdr + 6, mtu);
  out.insert(out.end(), ip_in, ip_in + quote);
  auto fold = [](const std::byte* p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += load16(p + i);
    if (n % 2) sum += std::to_integer<uint32_t>(p[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
  };
  h = out.data() + kEthHeaderLen;
  store16(h + 10, fold(h, 20));
  store16(h + 22, fold(h + 20, 8 + quote));
  return out;
}

Bytes ip6ip6Frame(const Bytes& inner, const pkt::Ip6& outer_src, const pkt::Ip6& node, uint32_t flow_label) {
  const size_t inner_len = 40 + load16(inner.data() + kEthHeaderLen + 4);
  Bytes out(kEthHeaderLen + 40);
  storeMac(out.data(), Topo6::nodeMac(node));
  storeMac(out.data() + 6, Topo::intMac());
  store16(out.data() + 12, kEtherTypeIpv6);
  std::byte* h = out.data() + kEthHeaderLen;
  // Version 6, the inner traffic class (bits 4..11 of the first word), the flow label.
  const uint32_t tc = (load32(inner.data() + kEthHeaderLen) >> 20) & 0xff;
  store32(h, 0x60000000u | (tc << 20) | flow_label);
  store16(h + 4, static_cast<uint16_t>(inner_len));
  h[6] = std::byte{41};
  h[7] = std::byte{64};
  storeIp6(h + 8, outer_src);
  storeIp6(h + 24, node);
  out.insert(out.end(), inner.begin() + kEthHeaderLen, inner.begin() + static_cast<ptrdiff_t>(kEthHeaderLen + inner_len));
  return out;
}

Bytes packetTooBig6Frame(const Bytes& offending, const pkt::Ip6& from, uint32_t mtu) {
  const std::byte* ip_in = offending.data() + kEthHeaderLen;
  const size_t quote = std::min<size_t>(40 + load16(ip_in + 4), 1280 - 48);
  Bytes out(kEthHeaderLen + 48);
  storeMac(out.data(), loadMac(offending.data() + 6));
  storeMac(out.data() + 6, Topo::extMac());
  store16(out.data() + 12, kEtherTypeIpv6);
  std::byte* h = out.data() + kEthHeaderLen;
  h[0] = std::byte{0x60};
  store16(h + 4, static_cast<uint16_t>(8 + quote));
  h[6] = std::byte{58};
  h[7] = std::byte{64};
  storeIp6(h + 8, from);
  std::memcpy(h + 24, ip_in + 8, 16);  // to the client
  h[40] = std::byte{2};
  store32(h + 44, mtu);
  out.insert(out.end(), ip_in, ip_in + quote);
  h = out.data() + kEthHeaderLen;
  // RFC 4443 sec. 2.3 by hand: pseudo-header (addresses, length, next header 58) + message.
  uint64_t sum = 0;
  for (size_t i = 8; i < 40; i += 2) sum += load16(h + i);
  sum += 8 + quote;
  sum += 58;
  for (size_t i = 0; i + 1 < 8 + quote; i += 2) sum += load16(h + 40 + i);
  if ((8 + quote) % 2) sum += std::to_integer<uint32_t>(h[40 + 8 + quote - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  store16(h + 42, static_cast<uint16_t>(~sum));
  return out;
}

Bytes clientTunnelTcp6(uint16_t client_port, uint8_t flags, size_t payload, uint16_t port) {
  return fromClient()
      .ipv6(Topo6::clientIp(), Topo6::tunnelVip())
      .tcp(client_port, port, flags)
      .payload(payload)
      .build();
}

namespace {

// A client -> tunnel VIP packet that must leave encapsulated toward a node.
Step tunnelStep(Bytes input, uint16_t outer_id, bool same_node = true) {
  Step s{.in_port = kExt, .input = input, .verdict = Action::Kind::kForward, .out_port = kInt, .observe = true,
         .same_node = same_node};
  s.output = [input, outer_id](const Observed& o) { return ipipFrame(input, o.outer_src, o.node_ip, outer_id); };
  return s;
}


// --- IPv4 ICMP errors about full-NAT flows (fwd/processor.cc, handleIcmpError) ----------
// Every expected frame is built fresh by PacketBuilder (all checksums computed from
// scratch), the quote included: a quote is the first `max` bytes of the IP packet a
// sender built, as the router that could not pass it would copy it.
Bytes quoteOf(const Bytes& frame, size_t max = 576) {
  const size_t total = load16(frame.data() + kEthHeaderLen + ipv4::kTotalLen);
  return Bytes(frame.begin() + kEthHeaderLen, frame.begin() + kEthHeaderLen + std::min(total, max));
}

void appendIcmpErrorFixtures(std::vector<Fixture>& f) {
  const std::vector<std::pair<uint32_t, Mac>> client_known = {{Topo::clientIp(), Topo::clientMac()}};
  const uint32_t client_router = ip("10.100.0.254");
  const uint32_t node_router = ip("10.200.0.254");
  const Mac router_mac = mac("02:00:00:00:03:fe");
  constexpr uint8_t kUnreach = icmp::kDestUnreachable;
  const uint8_t kAck = tcp::kAckFlag;
  const uint8_t kSynAck = tcp::kSyn | tcp::kAckFlag;
  // The client's segment as the box sent it to the node, and as the client sent it.
  auto sentToNode = [](const Observed& o, uint8_t flags, size_t payload) {
    return PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip)).ipv4(Topo::intIp(), o.node_ip, 63)
        .tcp(o.snat_port, 30080, flags).payload(payload).build();
  };
  auto clientSent = [](uint8_t flags, size_t payload) {
    return fromClient().ipv4(Topo::clientIp(), Topo::vip(), 63).tcp(kClientPort, 80, flags).payload(payload).build();
  };
  // The node's answer as the box sent it to the client, and as the node sent it.
  auto sentToClient = [](uint8_t flags) {
    return PacketBuilder().eth(Topo::extMac(), Topo::clientMac()).ipv4(Topo::vip(), Topo::clientIp(), 63)
        .tcp(80, kClientPort, flags).build();
  };
  auto nodeSent = [](const Observed& o, uint8_t flags) {
    return PacketBuilder().eth(Topo::nodeMac(o.node_ip), Topo::intMac()).ipv4(o.node_ip, Topo::intIp(), 63)
        .tcp(30080, o.snat_port, flags).build();
  };
  const Step syn = toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn));

  // A router on the node's path cannot pass the client's 1400-byte segment (SNAT:port ->
  // node:30080, DF): the client hears it from the VIP about client:port -> VIP:80. RFC
  // 792's minimal quote (header + 8 bytes: no TCP checksum in it).
  Step node_side{.in_port = kInt,
                 .make_input =
                     [=](const Observed& o) {
                       return PacketBuilder().eth(router_mac, Topo::intMac()).ipv4(node_router, Topo::intIp())
                           .icmpError(kUnreach, icmp::kFragNeeded, 1400, quoteOf(sentToNode(o, kAck, 1400), 28))
                           .build();
                     },
                 .verdict = Action::Kind::kForward,
                 .out_port = kExt,
                 .output = [=](const Observed&) {
                   return PacketBuilder().eth(Topo::extMac(), Topo::clientMac()).ipv4(Topo::vip(), Topo::clientIp(), 63)
                       .icmpError(kUnreach, icmp::kFragNeeded, 1400, quoteOf(clientSent(kAck, 1400), 28))
                       .build();
                 },
                 .icmp_errors_translated_after = 1};
  // A router on the client's path cannot pass the node's SYN-ACK (VIP:80 -> client): the
  // node hears it from the SNAT address about its own node:30080 -> SNAT:port. A long
  // quote (Linux quotes up to 576 bytes): the quoted TCP checksum is translated too.
  Step client_side{.in_port = kExt,
                   .make_input =
                       [=](const Observed&) {
                         return PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(client_router, Topo::vip())
                             .icmpError(kUnreach, icmp::kFragNeeded, 1300, quoteOf(sentToClient(kSynAck)))
                             .build();
                       },
                   .verdict = Action::Kind::kForward,
                   .out_port = kInt,
                   .output = [=](const Observed& o) {
                     return PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip)).ipv4(Topo::intIp(), o.node_ip, 63)
                         .icmpError(kUnreach, icmp::kFragNeeded, 1300, quoteOf(nodeSent(o, kSynAck)))
                         .build();
                   },
                   .icmp_errors_translated_after = 2};
  f.push_back({"ICMP frag-needed about a full-NAT flow is translated to the other side, both ways",
               {syn, node_side, client_side},
               client_known});

  // Port unreachable from the node for a UDP flow (no listener on the nodePort): the
  // client learns at once. Time exceeded from a router behind the box: likewise.
  {
    const Bytes query = fromClient().ipv4(Topo::clientIp(), Topo::vip()).udp(5353, 53).payload(20).build();
    auto udpSent = [](const Observed& o) {
      return PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip)).ipv4(Topo::intIp(), o.node_ip, 63)
          .udp(o.snat_port, 30053).payload(20).build();
    };
    const Bytes udp_client_sent = fromClient().ipv4(Topo::clientIp(), Topo::vip(), 63).udp(5353, 53).payload(20).build();
    auto fromNodeSide = [=](uint32_t from, uint8_t type, uint8_t code) {
      return Step{.in_port = kInt,
                  .make_input =
                      [=](const Observed& o) {
                        return PacketBuilder().eth(Topo::nodeMac(o.node_ip), Topo::intMac()).ipv4(from != 0 ? from : o.node_ip, Topo::intIp())
                            .icmpError(type, code, 0, quoteOf(udpSent(o)))
                            .build();
                      },
                  .verdict = Action::Kind::kForward,
                  .out_port = kExt,
                  .output = [=](const Observed&) {
                    return PacketBuilder().eth(Topo::extMac(), Topo::clientMac()).ipv4(Topo::vip(), Topo::clientIp(), 63)
                        .icmpError(type, code, 0, quoteOf(udp_client_sent))
                        .build();
                  }};
    };
    f.push_back({"ICMP port unreachable from the node and time exceeded behind the box reach the client",
                 {toNodeStep(query, udpSent), fromNodeSide(0, kUnreach, 3),
                  fromNodeSide(node_router, icmp::kTimeExceeded, 0)},
                 client_known});
  }

  // Errors that are not translated, each with its reason.
  auto nodeSideError = [=](uint8_t type, uint8_t code, std::function<Bytes(const Observed&)> quote,
                           DropReason reason) {
    return Step{.in_port = kInt,
                .make_input =
                    [=](const Observed& o) {
                      return PacketBuilder().eth(router_mac, Topo::intMac()).ipv4(node_router, Topo::intIp())
                          .icmpError(type, code, 1400, quote(o)).build();
                    },
                .drop = reason};
  };
  f.push_back({"ICMP errors with a truncated or foreign quote are dropped",
               {syn,
                // Header + 4 bytes: ports, but less than RFC 792's 8 bytes.
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) { return quoteOf(sentToNode(o, kAck, 0), 24); },
                              DropReason::kIcmpUnsupported),
                // Only part of the quoted IP header.
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) { return quoteOf(sentToNode(o, kAck, 0), 12); },
                              DropReason::kIcmpUnsupported),
                // Quoted IHL 15 (60 bytes) with only 28 bytes quoted.
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) {
                                Bytes q = quoteOf(sentToNode(o, kAck, 0), 28);
                                q[0] = std::byte{0x4f};
                                return q;
                              },
                              DropReason::kIcmpUnsupported),
                // An error about an ICMP error (RFC 1122 3.2.2: never answered, never passed on).
                nodeSideError(kUnreach, 3,
                              [=](const Observed& o) {
                                return quoteOf(PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                                   .ipv4(Topo::intIp(), o.node_ip, 63)
                                                   .icmpError(kUnreach, 3, 0, quoteOf(sentToNode(o, kAck, 0), 28))
                                                   .build());
                              },
                              DropReason::kIcmpUnsupported),
                // Nothing of the above moved the flow: the real error still passes.
                node_side},
               client_known});
  // (At most 8 steps per fixture: the fuzzer's seed programs hold 1..8 records.)
  f.push_back({"ICMP errors quoting a later fragment, another sender, no flow, or of another type are dropped",
               {syn,
                // A quote of a later fragment (no ports in it).
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) {
                                return quoteOf(PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                                   .ipv4(Topo::intIp(), o.node_ip, 63).ipFrag(0x00b9)
                                                   .udp(o.snat_port, 30080).payload(8).build());
                              },
                              DropReason::kIcmpUnsupported),
                // A quote not sent from the address the error is addressed to.
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) {
                                return quoteOf(PacketBuilder().ipv4(ip("10.200.0.99"), o.node_ip, 63)
                                                   .tcp(o.snat_port, 30080, kAck).build());
                              },
                              DropReason::kIcmpUnsupported),
                // A redirect quoting the flow: not translated.
                nodeSideError(5, 1, [=](const Observed& o) { return quoteOf(sentToNode(o, kAck, 0)); },
                              DropReason::kIcmpUnsupported),
                // A quote of a flow we do not have (another client port).
                nodeSideError(kUnreach, icmp::kFragNeeded,
                              [=](const Observed& o) {
                                return quoteOf(PacketBuilder().eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                                   .ipv4(Topo::intIp(), o.node_ip, 63)
                                                   .tcp(static_cast<uint16_t>(o.snat_port + 1), 30080, kAck).build());
                              },
                              DropReason::kNoFlow),
                // Nothing of the above moved the flow: the real error still passes.
                node_side},
               client_known});
  {
    Bytes bad = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(client_router, Topo::vip())
                    .icmpError(kUnreach, icmp::kFragNeeded, 1300, quoteOf(sentToClient(kSynAck))).build();
    bad[kEthHeaderLen + kIpv4MinLen + icmp::kChecksum] ^= std::byte{0x40};
    f.push_back({"ICMP frag-needed with a bad ICMP checksum is dropped",
                 {syn, dropStep(kExt, bad, DropReason::kIcmpUnsupported)}, client_known});
    const Bytes unknown = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(client_router, Topo::vip())
                              .icmpError(kUnreach, icmp::kFragNeeded, 1300, quoteOf(sentToClient(kSynAck))).build();
    f.push_back({"ICMP frag-needed to the VIP quoting no flow of ours", {dropStep(kExt, unknown, DropReason::kNoFlow)}});
    // ICMP is never balanced in fragments: a first fragment and a later one of an error.
    const Bytes big_error = PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(client_router, Topo::vip())
                                .icmpError(kUnreach, icmp::kFragNeeded, 1300, quoteOf(sentToClient(kSynAck))).payload(1400)
                                .build();
    const std::vector<Bytes> pieces = fragmentIpv4(big_error, 1000);
    f.push_back({"ICMP errors in fragments are dropped, first fragment or later",
                 {syn, dropStep(kExt, pieces[0], DropReason::kFragment), dropStep(kExt, pieces[1], DropReason::kFragment)},
                 client_known});
  }
  // A tunnel-mode flow's node answers the client directly: an error about VIP -> client
  // quotes a packet the box never sent.
  f.push_back({"ICMP frag-needed about a tunnel-mode flow is not translated",
               {tunnelStep(clientTunnelTcp(kClientPort, tcp::kSyn), 0, false),
                dropStep(kExt,
                         PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(client_router, Topo::tunnelVip())
                             .icmpError(kUnreach, icmp::kFragNeeded, 1300,
                                        quoteOf(PacketBuilder().eth(Topo::extMac(), Topo::clientMac())
                                                    .ipv4(Topo::tunnelVip(), Topo::clientIp(), 63)
                                                    .tcp(80, kClientPort, kSynAck).build()))
                             .build(),
                         DropReason::kIcmpUnsupported)},
               client_known});
  // SNAT shares the internal port's address with the kernel (exception path): an error
  // quoting none of our flows is about the kernel's own traffic.
  {
    Fixture fx{.description = "ICMP error to a SNAT address shared with the kernel, quoting no flow, goes to the kernel",
               .steps = {kernelStep(kInt, PacketBuilder().eth(router_mac, Topo::intMac()).ipv4(node_router, Topo::intIp())
                                              .icmpError(kUnreach, 3, 0,
                                                         quoteOf(PacketBuilder().ipv4(Topo::intIp(), ip("10.200.0.11"), 64)
                                                                     .udp(33434, 33434).payload(8).build()))
                                              .build())},
               .exception_path = true};
    f.push_back(std::move(fx));
  }
}
}  // namespace

std::vector<Fixture> standardFixtures() {
  const Mac client = Topo::clientMac();
  const uint8_t kSynAck = tcp::kSyn | tcp::kAckFlag;
  const uint8_t kAck = tcp::kAckFlag;
  const uint8_t kPshAck = tcp::kPsh | tcp::kAckFlag;
  const std::vector<std::pair<uint32_t, Mac>> client_known = {{Topo::clientIp(), client}};
  std::vector<Fixture> f;

  // --- ARP ---------------------------------------------------------------------------
  auto arpReply = [](const Mac& our_mac, uint32_t our_ip, const Mac& to_mac, uint32_t to_ip) {
    return [=](const Observed&) {
      return PacketBuilder().eth(our_mac, to_mac).arp(arp::kReply, our_mac, our_ip, to_mac, to_ip).build();
    };
  };
  {
    Step s = arpStep(kExt, Topo::clientIp(), client, Topo::vip());
    s.verdict = Action::Kind::kForward;
    s.out_port = kExt;
    s.output = arpReply(Topo::extMac(), Topo::vip(), client, Topo::clientIp());
    f.push_back({"ARP request for a VIP on the external port is answered", {s}});
  }
  {
    Step s = arpStep(kExt, Topo::clientIp(), client, Topo::extIp());
    s.verdict = Action::Kind::kForward;
    s.out_port = kExt;
    s.output = arpReply(Topo::extMac(), Topo::extIp(), client, Topo::clientIp());
    f.push_back({"ARP request for the external address is answered", {s}});
  }
  {
    const Mac node = Topo::nodeMac(ip("10.200.0.11"));
    Step s = arpStep(kInt, ip("10.200.0.11"), node, Topo::intIp());
    s.verdict = Action::Kind::kForward;
    s.out_port = kInt;
    s.output = arpReply(Topo::intMac(), Topo::intIp(), node, ip("10.200.0.11"));
    f.push_back({"ARP request for the SNAT/internal address is answered on the internal port", {s}});
  }
  {
    Step s = arpStep(kExt, Topo::clientIp(), client, ip("10.100.0.77"));
    s.drop = DropReason::kArpNotForUs;
    f.push_back({"ARP request for someone else is ignored", {s}});
  }
  {
    Step s = arpStep(kInt, ip("10.200.0.11"), Topo::nodeMac(ip("10.200.0.11")), Topo::vip());
    s.drop = DropReason::kArpNotForUs;
    f.push_back({"VIPs are announced on the external port only", {s}});
  }
  {
    Step s{.in_port = kExt,
           .input = PacketBuilder().eth(client, Topo::extMac()).arp(3, client, Topo::clientIp(), kZeroMac, Topo::vip()).build(),
           .drop = DropReason::kBadArp};
    f.push_back({"ARP with an unknown operation is dropped", {s}});
  }
  {
    Step s{.in_port = kExt,
           .input = PacketBuilder().eth(client, Topo::extMac()).arp(arp::kReply, client, Topo::clientIp(), Topo::extMac(), Topo::extIp()).build(),
           .verdict = Action::Kind::kConsumed};
    f.push_back({"unsolicited ARP reply is consumed without learning", {s}});
  }

  // --- TCP full-NAT ----------------------------------------------------------------------
  f.push_back({"SYN to VIP:80 is full-NATed to a node's nodePort",
               {toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn))}});
  f.push_back({"a whole connection: SYN, SYN-ACK, ACK, data both ways, FIN",
               {toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn)),
                toClientStep(nodeReply(kSynAck), restored(kSynAck)),
                toNodeStep(clientTcp(kClientPort, kAck), natSyn(kAck)),
                toNodeStep(clientTcp(kClientPort, kPshAck, 100), natSyn(kPshAck, 100)),
                toClientStep(nodeReply(kPshAck, 1000), restored(kPshAck, 1000)),
                toNodeStep(clientTcp(kClientPort, tcp::kFin | kAck), natSyn(tcp::kFin | kAck))},
               client_known});
  f.push_back({"reply while the client's MAC is unknown waits for ARP",
               {toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn)),
                Step{.in_port = kInt, .make_input = nodeReply(kSynAck), .drop = DropReason::kNeighborUnresolved}}});
  f.push_back({"ACK without a flow is dropped (no state from mid-stream segments)",
               {dropStep(kExt, clientTcp(kClientPort, kAck), DropReason::kNoFlow)}});
  f.push_back({"SYN-ACK from a client creates no flow",
               {dropStep(kExt, clientTcp(kClientPort, kSynAck), DropReason::kNoFlow)}});
  f.push_back({"RST without a flow is dropped", {dropStep(kExt, clientTcp(kClientPort, tcp::kRst), DropReason::kNoFlow)}});
  f.push_back({"SYN to a VIP port without a service",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).tcp(kClientPort, 81, tcp::kSyn).build(),
                         DropReason::kNoService)}});
  f.push_back({"node reply without a flow is dropped",
               {dropStep(kInt, nodeTcp(ip("10.200.0.11"), 5555, kSynAck), DropReason::kNoFlow)}});
  f.push_back({"TTL 1 is not forwarded",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip(), 1).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kTtlExceeded)}});
  f.push_back({"IP options are carried through the rewrite",
               {toNodeStep(fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipOptions(8).tcp(kClientPort, 80, tcp::kSyn).build(),
                           [](const Observed& o) {
                             return PacketBuilder()
                                 .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                 .ipv4(Topo::intIp(), o.node_ip, 63)
                                 .ipOptions(8)
                                 .tcp(o.snat_port, 30080, tcp::kSyn)
                                 .build();
                           })}});

  // --- UDP ------------------------------------------------------------------------------
  f.push_back({"UDP to VIP:53 goes to nodePort 30053 and the reply comes back",
               {toNodeStep(fromClient().ipv4(Topo::clientIp(), Topo::vip()).udp(5353, 53).payload(20).build(),
                           [](const Observed& o) {
                             return PacketBuilder()
                                 .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                 .ipv4(Topo::intIp(), o.node_ip, 63)
                                 .udp(o.snat_port, 30053)
                                 .payload(20)
                                 .build();
                           }),
                toClientStep([](const Observed& o) { return nodeUdp(o.node_ip, o.snat_port, 20); }, [](const Observed&) {
                  return PacketBuilder()
                      .eth(Topo::extMac(), Topo::clientMac())
                      .ipv4(Topo::vip(), Topo::clientIp(), 63)
                      .udp(53, 5353)
                      .payload(20)
                      .build();
                })},
               client_known});
  f.push_back({"UDP without checksum stays without checksum",
               {toNodeStep(fromClient().ipv4(Topo::clientIp(), Topo::vip()).udp(5353, 53).l4Checksum(0).build(),
                           [](const Observed& o) {
                             return PacketBuilder()
                                 .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                 .ipv4(Topo::intIp(), o.node_ip, 63)
                                 .udp(o.snat_port, 30053)
                                 .l4Checksum(0)
                                 .build();
                           })}});

  // --- ICMP -----------------------------------------------------------------------------
  auto echoReply = [](uint32_t from) {
    return [=](const Observed&) {
      return PacketBuilder()
          .eth(Topo::extMac(), Topo::clientMac())
          .ipv4(from, Topo::clientIp(), 64)
          .icmpEcho(icmp::kEchoReply, 7, 1)
          .payload(32)
          .build();
    };
  };
  f.push_back({"ping to a VIP is answered",
               {Step{.in_port = kExt,
                     .input = fromClient().ipv4(Topo::clientIp(), Topo::vip()).icmpEcho(icmp::kEchoRequest, 7, 1).payload(32).build(),
                     .verdict = Action::Kind::kForward, .out_port = kExt, .output = echoReply(Topo::vip())}}});
  f.push_back({"ping to the box's external address is answered",
               {Step{.in_port = kExt,
                     .input = fromClient().ipv4(Topo::clientIp(), Topo::extIp()).icmpEcho(icmp::kEchoRequest, 7, 1).payload(32).build(),
                     .verdict = Action::Kind::kForward, .out_port = kExt, .output = echoReply(Topo::extIp())}}});
  f.push_back({"ICMP other than echo request to a VIP is dropped",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).icmpEcho(13, 7, 1).build(),
                         DropReason::kIcmpUnsupported)}});

  // --- Policy and malformed input ------------------------------------------------------
  // --- IPv4 fragments (policy: fwd/processor.cc, handleFragment) ---------------------------
  {
    // A 3000-byte UDP datagram in three fragments (1480 + 1480 + 48 bytes of IP payload),
    // then the node's 3000-byte answer, fragmented by the node. Expected outputs are the
    // translated whole datagram fragmented the same way, so the first fragment's L4
    // checksum is checked against the reassembled datagram's. Each fragmented datagram
    // leaves with the worker's next IP id: 0 for the first one a fresh worker forwards,
    // then 1.
    constexpr size_t kBig = 3000;
    constexpr uint16_t kId = 0x4242;
    const std::vector<Bytes> out = fragmentIpv4(clientUdpDatagram(kBig, kId), 1480);
    std::vector<Step> steps{toNodeStep(out[0], natUdpFragment(kBig, 0, 0))};
    for (size_t k = 1; k < out.size(); ++k) steps.push_back(laterToNode(out[k], natUdpFragment(kBig, 0, k)));
    for (size_t k = 0; k < 3; ++k) {
      steps.push_back(toClientStep(
          [=](const Observed& o) { return fragmentIpv4(nodeUdpDatagram(o, kBig, 0x5151), 1480)[k]; },
          [=](const Observed&) { return fragmentIpv4(restoredUdpDatagram(kBig, 1), 1480)[k]; }));
    }
    f.push_back({"UDP fragments follow the first fragment to its node and back, rewritten like it", std::move(steps),
                 client_known});
  }
  {
    constexpr size_t kBig = 3000;
    constexpr uint16_t kId = 0x4343;
    const std::vector<Bytes> out = fragmentIpv4(clientUdpDatagram(kBig, kId), 1480);
    f.push_back({"a fragment that arrives before its first fragment is dropped, later ones pass",
                 {dropStep(kExt, out[1], DropReason::kFragmentNoFlow),
                  toNodeStep(out[0], natUdpFragment(kBig, 0, 0)),
                  laterToNode(out[2], natUdpFragment(kBig, 0, 2))}});
    f.push_back({"fragments after the first pass in any order; the entry ends with the last byte",
                 {toNodeStep(out[0], natUdpFragment(kBig, 0, 0)),
                  laterToNode(out[2], natUdpFragment(kBig, 0, 2)),
                  laterToNode(out[1], natUdpFragment(kBig, 0, 1)),
                  dropStep(kExt, out[1], DropReason::kFragmentNoFlow)}});
  }
  {
    // A TCP segment of 2000 bytes fragmented after the handshake: same node, same SNAT
    // port, the TCP checksum corrected in the first fragment only.
    constexpr uint16_t kId = 0x4444;
    const Bytes segment = fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipId(kId)
                              .tcp(kClientPort, 80, kPshAck).payload(2000).build();
    const std::vector<Bytes> out = fragmentIpv4(segment, 1480);
    auto nat = [=](size_t k) {
      return [=](const Observed& o) {
        return fragmentIpv4(PacketBuilder()
                                .eth(Topo::intMac(), Topo::nodeMac(o.node_ip))
                                .ipv4(Topo::intIp(), o.node_ip, 63)
                                .ipId(0)  // renumbered: the worker's first fragmented datagram
                                .tcp(o.snat_port, 30080, kPshAck)
                                .payload(2000)
                                .build(),
                            1480)[k];
      };
    };
    f.push_back({"a fragmented TCP segment follows its connection",
                 {toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn)),
                  toClientStep(nodeReply(kSynAck), restored(kSynAck)),
                  sameNodeStep(toNodeStep(out[0], nat(0))),
                  laterToNode(out[1], nat(1))},
                 client_known});
  }
  {
    constexpr uint16_t kId = 0x4545;
    const std::vector<Bytes> out = fragmentIpv4(clientUdpDatagram(3000, kId), 1480);
    auto frag = [](uint16_t field, size_t payload) {
      return fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipId(kId).ipFrag(field).ipProto(kProtoUdp)
          .payload(payload).build();
    };
    f.push_back({"malformed fragments are dropped",
                 {dropStep(kExt, frag(ipv4::kFlagMf | 185, 0), DropReason::kFragmentMalformed),    // MF, empty
                  dropStep(kExt, frag(ipv4::kFlagMf | 185, 13), DropReason::kFragmentMalformed),   // MF, not 8k bytes
                  dropStep(kExt, frag(ipv4::kOffsetMask, 100), DropReason::kFragmentMalformed),    // ends past 65535
                  toNodeStep(out[0], natUdpFragment(3000, 0, 0)),
                  dropStep(kExt, frag(ipv4::kFlagMf | 1, 8), DropReason::kFragmentMalformed),      // overlaps the first
                  dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipFrag(ipv4::kFlagMf)
                                     .ipProto(kProtoTcp).payload(16).build(),
                           DropReason::kTruncated),  // first fragment too short for the TCP header
                  dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipFrag(ipv4::kFlagMf)
                                     .icmpEcho(icmp::kEchoRequest, 7, 1).payload(1472).build(),
                           DropReason::kFragment),   // ICMP: nothing to balance it by
                  dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipFrag(185)
                                     .ipProto(kProtoIcmp).payload(100).build(),
                           DropReason::kFragment)}});
  }
  f.push_back({"source = VIP is a martian",
               {dropStep(kExt, fromClient().ipv4(Topo::vip(), Topo::vip()).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kMartian)}});
  f.push_back({"loopback, multicast, broadcast and zero sources are martians",
               {dropStep(kExt, fromClient().ipv4(ip("127.0.0.1"), Topo::vip()).tcp(1, 80, tcp::kSyn).build(), DropReason::kMartian),
                dropStep(kExt, fromClient().ipv4(ip("224.0.0.5"), Topo::vip()).tcp(1, 80, tcp::kSyn).build(), DropReason::kMartian),
                dropStep(kExt, fromClient().ipv4(ip("255.255.255.255"), Topo::vip()).tcp(1, 80, tcp::kSyn).build(), DropReason::kMartian),
                dropStep(kExt, fromClient().ipv4(0, Topo::vip()).tcp(1, 80, tcp::kSyn).build(), DropReason::kMartian)}});
  f.push_back({"bad IPv4 header checksum",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipChecksum(0x1234).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kIpChecksum)}});
  f.push_back({"IPv4 version 6 in an IPv4 ethertype",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipVersionIhl(0x65).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kBadIpHeader)}});
  f.push_back({"IHL below 5", {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipVersionIhl(0x44).tcp(kClientPort, 80, tcp::kSyn).build(),
                                        DropReason::kBadIpHeader)}});
  f.push_back({"IP total length larger than the frame",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipTotalLen(1400).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kTruncated)}});
  f.push_back({"IP total length smaller than the header",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipTotalLen(12).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kBadIpHeader)}});
  f.push_back({"TCP data offset beyond the segment",
               {dropStep(kExt, [] {
                  Bytes b = clientTcp(kClientPort, tcp::kSyn);
                  b[kEthHeaderLen + kIpv4MinLen + tcp::kDataOff] = std::byte{0xf0};
                  return b;
                }(), DropReason::kBadL4Header)}});
  f.push_back({"802.1Q tagged frames on an untagged port",
               {dropStep(kExt, fromClient().vlan(100).ipv4(Topo::clientIp(), Topo::vip()).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kVlan)}});
  f.push_back({"LLDP ethertype is not handled",
               {dropStep(kExt, fromClient().etherType(0x88cc).payload(60).build(), DropReason::kUnsupportedEtherType)}});
  f.push_back({"GRE to a VIP", {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).ipProto(47).payload(24).build(),
                                         DropReason::kUnsupportedProtocol)}});
  f.push_back({"SSH to the box's own address without an exception path is dropped",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::extIp()).tcp(kClientPort, 22, tcp::kSyn).build(),
                         DropReason::kLocalNoExceptionPath)}});
  f.push_back({"traffic for another address is not routed",
               {dropStep(kExt, fromClient().ipv4(Topo::clientIp(), ip("10.100.0.50")).tcp(kClientPort, 80, tcp::kSyn).build(),
                         DropReason::kNotForUs)}});
  f.push_back({"VIP traffic arriving from the node side",
               {dropStep(kInt, PacketBuilder().eth(Topo::nodeMac(ip("10.200.0.11")), Topo::intMac())
                                    .ipv4(ip("10.200.0.11"), Topo::vip()).tcp(1234, 80, tcp::kSyn).build(),
                         DropReason::kWrongPort)}});
  f.push_back({"runt frame", {dropStep(kExt, Bytes(10, std::byte{0}), DropReason::kTruncated)}});

  // --- Source ranges (loadBalancerSourceRanges) ------------------------------------------
  const uint16_t only = SvcPorts::kOnlyClient;
  const uint16_t docs = SvcPorts::kDocNets;
  const uint16_t any = SvcPorts::kAnySource;
  f.push_back({"source range /32 admits exactly that address",
               {allowedStep(Topo::clientIp(), only, 1),
                deniedStep(ip("10.100.0.3"), only, tcp::kSyn, 1),
                deniedStep(ip("10.100.1.2"), only, tcp::kSyn, 1)}});
  f.push_back({"a source outside every range is dropped before any state, whatever the segment",
               {deniedStep(Topo::clientIp(), docs, tcp::kSyn, 0),
                deniedStep(Topo::clientIp(), docs, tcp::kAckFlag, 0),
                deniedStep(Topo::clientIp(), docs, tcp::kRst, 0),
                dropStep(kExt, fromClient().ipv4(Topo::clientIp(), Topo::vip()).udp(5353, docs).build(),
                         DropReason::kNoService)}});
  f.push_back({"range edges: first and last address in, the neighbours outside out",
               {allowedStep(ip("203.0.113.0"), docs, 1),
                allowedStep(ip("203.0.113.255"), docs, 2),
                deniedStep(ip("203.0.112.255"), docs, tcp::kSyn, 2),
                deniedStep(ip("203.0.114.0"), docs, tcp::kSyn, 2),
                allowedStep(ip("198.51.100.77"), docs, 3),
                deniedStep(ip("198.51.101.0"), docs, tcp::kSyn, 3)}});
  f.push_back({"source range /0 admits every unicast source",
               {allowedStep(Topo::clientIp(), any, 1),
                allowedStep(ip("1.0.0.1"), any, 2),
                allowedStep(ip("223.255.255.254"), any, 3)}});
  f.push_back({"martians stay martians under /0 (checked before the source ranges)",
               {dropStep(kExt, tcpFrom(ip("255.255.255.255"), kClientPort, any, tcp::kSyn), DropReason::kMartian),
                dropStep(kExt, tcpFrom(ip("127.0.0.1"), kClientPort, any, tcp::kSyn), DropReason::kMartian)}});
  f.push_back({"an admitted connection runs both ways",
               {toNodeStep(tcpFrom(Topo::clientIp(), kClientPort, only, tcp::kSyn), natTcpTo(only, tcp::kSyn)),
                toClientStep([](const Observed& o) {
                               return PacketBuilder()
                                   .eth(Topo::nodeMac(o.node_ip), Topo::intMac())
                                   .ipv4(o.node_ip, Topo::intIp())
                                   .tcp(SvcPorts::nodePortOf(SvcPorts::kOnlyClient), o.snat_port, tcp::kSyn | tcp::kAckFlag)
                                   .build();
                             },
                             [](const Observed&) {
                               return PacketBuilder()
                                   .eth(Topo::extMac(), Topo::clientMac())
                                   .ipv4(Topo::vip(), Topo::clientIp(), 63)
                                   .tcp(SvcPorts::kOnlyClient, kClientPort, tcp::kSyn | tcp::kAckFlag)
                                   .build();
                             })},
               client_known});

  // --- Session affinity ClientIP ----------------------------------------------------------
  {
    const uint16_t aff = SvcPorts::kAffinityTcp;
    std::vector<Step> steps{toNodeStep(tcpFrom(Topo::clientIp(), 41000, aff, tcp::kSyn), natTcpTo(aff, tcp::kSyn))};
    for (uint16_t port = 41001; port < 41008; ++port) {
      steps.push_back(sameNodeStep(toNodeStep(tcpFrom(Topo::clientIp(), port, aff, tcp::kSyn), natTcpTo(aff, tcp::kSyn))));
    }
    steps.back().flows_after = 8;
    f.push_back({"ClientIP affinity: every new connection of a client goes to one node", std::move(steps)});
  }
  {
    const uint16_t aff = SvcPorts::kAffinityUdp;
    std::vector<Step> steps;
    for (uint16_t port = 6000; port < 6006; ++port) {
      Step s = toNodeStep(fromClient().ipv4(Topo::clientIp(), Topo::vip()).udp(port, aff).payload(12).build(),
                          natUdpTo(aff, 12));
      s.same_node = port != 6000;
      steps.push_back(std::move(s));
    }
    f.push_back({"ClientIP affinity over UDP: datagrams from several client ports go to one node", std::move(steps)});
  }

  // --- Tunnel mode (DSR, IPIP) -------------------------------------------------------------
  // DF packets leave with outer id 0; the node is checked against Maglev's choices by
  // the runner (one of the three nodes) and kept for the whole flow.
  f.push_back({"tunnel: a connection's segments leave IPIP to one node, inner packet untouched",
               {tunnelStep(clientTunnelTcp(kClientPort, tcp::kSyn), 0, false),
                tunnelStep(clientTunnelTcp(kClientPort, kAck), 0),
                tunnelStep(clientTunnelTcp(kClientPort, kPshAck, 700), 0),
                tunnelStep(clientTunnelTcp(kClientPort, tcp::kFin | kAck), 0)}});
  f.push_back({"tunnel: a TTL of 1 is delivered, not decremented (the box owns the VIP)",
               {tunnelStep(fromClient()
                               .ipv4(Topo::clientIp(), Topo::tunnelVip(), 1)
                               .ipFrag(0x4000)
                               .tcp(kClientPort, 80, tcp::kSyn)
                               .build(),
                           0, false)}});
  {
    // Without DF the outer header takes ids from the worker's counter (0, 1, ...).
    std::vector<Step> steps;
    for (uint16_t i = 0; i < 3; ++i) {
      steps.push_back(tunnelStep(fromClient().ipv4(Topo::clientIp(), Topo::tunnelVip()).udp(5353, 53).payload(40).build(),
                                 i, i != 0));
    }
    steps.back().flows_after = 1;
    f.push_back({"tunnel: UDP without DF: DF stays clear, outer ids count up", std::move(steps)});
  }
  f.push_back({"tunnel: a mid-stream ACK without a flow goes to the Maglev choice (another box's flow)",
               {tunnelStep(clientTunnelTcp(kClientPort, kAck), 0, false)}});
  {
    Step rst = tunnelStep(clientTunnelTcp(kClientPort, tcp::kRst), 0, false);
    rst.flows_after = 0;
    f.push_back({"tunnel: a RST without a flow is forwarded and creates nothing", {rst}});
  }
  {
    Step denied = dropStep(kExt, clientTunnelTcp(kClientPort, tcp::kSyn, 0, SvcPorts::kOnlyClient), DropReason::kSourceDenied);
    denied.input = fromClient()
                       .ipv4(ip("198.51.100.7"), Topo::tunnelVip())
                       .ipFrag(0x4000)
                       .tcp(kClientPort, SvcPorts::kOnlyClient, tcp::kSyn)
                       .build();
    denied.flows_after = 0;
    Step allowed = tunnelStep(clientTunnelTcp(kClientPort, tcp::kSyn, 0, SvcPorts::kOnlyClient), 0, false);
    allowed.flows_after = 1;
    f.push_back({"tunnel: source ranges deny a new flow as in full-NAT, and allow the listed client",
                 {denied, allowed}});
  }
  {
    std::vector<Step> steps;
    for (uint16_t port = 41000; port < 41008; ++port) {
      steps.push_back(tunnelStep(clientTunnelTcp(port, tcp::kSyn, 0, SvcPorts::kAffinityTcp), 0, port != 41000));
    }
    steps.back().flows_after = 8;
    f.push_back({"tunnel: ClientIP affinity keeps every connection of a client on one node", std::move(steps)});
  }
  f.push_back({"tunnel and full-NAT in one snapshot: each VIP keeps its mode",
               {tunnelStep(clientTunnelTcp(kClientPort, tcp::kSyn), 0, false),
                toNodeStep(clientTcp(kClientPort, tcp::kSyn), natSyn(tcp::kSyn)),
                [] {
                  Step s = toNodeStep(clientTcp(kClientPort, kAck), natSyn(kAck));
                  s.flows_after = 2;  // one flow per VIP, same client port
                  return s;
                }()}});
  {
    // 1460 bytes of data: a 1500-byte IP packet that needs 1520 on a 1500-byte link.
    const Bytes big = clientTunnelTcp(kClientPort, kPshAck, 1460);
    Step answer{.in_port = kExt, .input = big, .verdict = Action::Kind::kForward, .out_port = kExt,
                .output = [big](const Observed&) { return fragNeededFrame(big, Topo::tunnelVip(), 1480); }};
    const Bytes fits = clientTunnelTcp(kClientPort, kPshAck, 1440);  // 1480 + 20 = 1500
    f.push_back({"tunnel: a DF packet too big for the tunnel is answered with frag-needed, MTU 1480",
                 {tunnelStep(clientTunnelTcp(kClientPort, tcp::kSyn), 0, false), answer, tunnelStep(fits, 0)}});
  }
  {
    const Bytes big = fromClient().ipv4(Topo::clientIp(), Topo::tunnelVip()).udp(5353, 53).payload(1472).build();
    Step s = dropStep(kExt, big, DropReason::kTunnelTooBig);
    s.flows_after = 0;
    f.push_back({"tunnel: a too-big packet without DF is dropped (the box does not fragment)", {s}});
  }
  {
    // A node's ICMP error to an outer source (its quoted packet: 28 bytes of filler).
    const Bytes unreachable = PacketBuilder()
                                  .eth(Topo::nodeMac(ip("10.200.0.11")), Topo::intMac())
                                  .ipv4(ip("10.200.0.11"), Topo::tunnelSourceFirst() + 7)
                                  .icmpEcho(icmp::kDestUnreachable, 0, 0)
                                  .payload(28)
                                  .build();
    f.push_back({"tunnel: a node's ICMP to an outer source is counted apart (no ipip device on the node?)",
                 {dropStep(kInt, unreachable, DropReason::kToTunnelSource)}});
  }
  {
    // A 3000-byte datagram in fragments of 1400 payload bytes (1420 + 20 fits 1500).
    const std::vector<Bytes> frags =
        fragmentIpv4(fromClient().ipv4(Topo::clientIp(), Topo::tunnelVip()).ipId(0x4242).udp(5353, 53).payload(3000).build(),
                     1400);
    std::vector<Step> steps;
    for (size_t k = 0; k < frags.size(); ++k) {
      Step s = tunnelStep(frags[k], static_cast<uint16_t>(k), k != 0);
      // Later fragments have no ports: the node and outer source come from the first.
      s.observe = k == 0;
      if (k != 0) {
        s.output = [frag = frags[k], k](const Observed& o) {
          return ipipFrame(frag, o.outer_src, o.node_ip, static_cast<uint16_t>(k));
        };
      }
      steps.push_back(std::move(s));
    }
    f.push_back({"tunnel: fragments follow the first fragment's node and outer source, unchanged", std::move(steps)});
  }

  appendExceptionFixtures(f);
  appendIcmpErrorFixtures(f);
  return f;
}

}  // namespace ng::test
