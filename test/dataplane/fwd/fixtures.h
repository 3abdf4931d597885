#pragma once
// Packet fixtures: tables of {description, steps: input frame -> expected verdict,
// output frame, drop reason}. One table feeds the unit runner (processor_test.cc), the
// per-packet benchmark (bench/pkt_bench.cc) and, later, the fuzzer seeds.
//
// Topology of every fixture (the demo's): external port slot 0, 10.100.0.1/24, client
// 10.100.0.2; internal port slot 1, 10.200.0.1/24; VIP 10.100.0.100 TCP 80 and UDP 53
// -> nodes 10.200.0.11..13 on nodePorts 30080 / 30053, nodes with static MACs. The same
// VIP has service ports with source ranges and session affinity (SvcPorts below).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "test/support/packet_builder.h"

namespace ng::test {

inline constexpr uint8_t kExt = 0;
inline constexpr uint8_t kInt = 1;

struct Env {
  std::vector<fwd::PortInfo> ports;
  std::unique_ptr<fwd::ForwardingSnapshot> snapshot;
};
[[nodiscard]] Env makeEnv();

// Well-known addresses of the fixture topology.
struct Topo {
  static Mac extMac() { return mac("02:00:00:00:00:01"); }
  static Mac intMac() { return mac("02:00:00:00:00:02"); }
  static Mac clientMac() { return mac("02:00:00:00:01:02"); }
  static Mac nodeMac(uint32_t node_ip);  // 02:00:00:00:02:<last octet>
  static uint32_t extIp() { return ip("10.100.0.1"); }
  static uint32_t intIp() { return ip("10.200.0.1"); }
  static uint32_t clientIp() { return ip("10.100.0.2"); }
  static uint32_t vip() { return ip("10.100.0.100"); }
  // Tunnel mode (DSR): VIP 10.100.0.101 TCP 80 / UDP 53 / TCP 8001 (source range
  // 10.100.0.2/32) / TCP 8004 (ClientIP affinity) to the same nodes, outer sources
  // 10.200.0.64/26 (.65 ... .126).
  static uint32_t tunnelVip() { return ip("10.100.0.101"); }
  static uint32_t tunnelSourceFirst() { return ip("10.200.0.65"); }
  static constexpr uint32_t kTunnelSources = 62;
};

// The fixture VIP's service ports (port -> nodePort): what each one exercises.
struct SvcPorts {
  static constexpr uint16_t kOnlyClient = 8001;   // -> 30001, source_ranges 10.100.0.2/32
  static constexpr uint16_t kDocNets = 8002;      // -> 30002, 198.51.100.0/24 + 203.0.113.0/24
  static constexpr uint16_t kAnySource = 8003;    // -> 30003, source_ranges 0.0.0.0/0
  static constexpr uint16_t kAffinityTcp = 8004;  // -> 30004, ClientIP, timeout 60 s
  static constexpr uint16_t kAffinityUdp = 5301;  // -> 30005, ClientIP, timeout 60 s
  static constexpr uint32_t kAffinityTimeoutMs = 60'000;
  static constexpr uint16_t nodePortOf(uint16_t port) {
    return port == kAffinityUdp ? 30005 : static_cast<uint16_t>(30000 + port - 8000);
  }
};

// A service port over nodes 10.200.0.11..13 (weight 1, Maglev size 251, stats ids as the
// compiler would give them).
[[nodiscard]] fwd::ServicePort fixtureServicePort(uint16_t port, uint8_t proto, uint16_t node_port);

// The IPv6 half of the topology (dual stack): external port 2001:db8:100::1/64, client
// 2001:db8:100::2; internal port 2001:db8:200::1/64 (also the SNAT6 address); VIP6
// 2001:db8:100::100 with the same ports as the IPv4 VIP (TCP 80, UDP 53, the SvcPorts
// below) -> nodes 2001:db8:200::11..13 on the same nodePorts, static MACs. Source ranges
// for IPv6: kOnlyClient 2001:db8:100::2/128, kAnySource ::/0, kDocNets lists only IPv4
// prefixes (so no IPv6 client may connect).
struct Topo6 {
  static pkt::Ip6 extIp() { return ip6("2001:db8:100::1"); }
  static pkt::Ip6 intIp() { return ip6("2001:db8:200::1"); }
  static pkt::Ip6 clientIp() { return ip6("2001:db8:100::2"); }
  static pkt::Ip6 vip() { return ip6("2001:db8:100::100"); }
  static pkt::Ip6 gateway() { return ip6("fe80::254"); }
  static std::vector<pkt::Ip6> nodes() {
    return {ip6("2001:db8:200::11"), ip6("2001:db8:200::12"), ip6("2001:db8:200::13")};
  }
  static Mac nodeMac(const pkt::Ip6& node);  // 02:00:00:00:06:<last byte>
  // Tunnel mode (IPv6-in-IPv6): VIP6 2001:db8:100::101 TCP 80 / UDP 53 / TCP 8001
  // (source range 2001:db8:100::2/128) / TCP 8004 (ClientIP affinity) to the same IPv6
  // nodes; outer sources 2001:db8:200::100 ... 2001:db8:200::10f (tunnel.source6).
  static pkt::Ip6 tunnelVip() { return ip6("2001:db8:100::101"); }
  static pkt::Ip6 tunnelSourceFirst() { return ip6("2001:db8:200::100"); }
  static constexpr uint32_t kTunnelSources = 16;
};
[[nodiscard]] fwd::ServicePort6 fixtureServicePort6(uint16_t port, uint8_t proto, uint16_t node_port);

// What a step's output told us, for later steps of the same fixture.
struct Observed {
  uint32_t node_ip = 0;
  uint16_t snat_port = 0;   // full-NAT
  uint32_t outer_src = 0;   // tunnel mode: the outer header's source
  pkt::Ip6 node_ip6{};      // IPv6 steps
  pkt::Ip6 outer_src6{};    // IPv6 tunnel mode: the outer header's source
  uint32_t flow_label6 = 0; // IPv6 tunnel mode: the outer header's flow label
};

struct Step {
  uint8_t in_port = kExt;
  Bytes input;
  // Used instead of `input` when set: frames that depend on what the box chose earlier
  // (a node's reply to the SNAT port).
  std::function<Bytes(const Observed&)> make_input = nullptr;
  fwd::Action::Kind verdict = fwd::Action::Kind::kDrop;
  uint8_t out_port = 0;
  std::optional<fwd::DropReason> drop;
  // Expected output frame, built from what earlier steps observed (for kForward).
  std::function<Bytes(const Observed&)> output;
  // When true, this step's output defines Observed (a client -> node forward).
  bool observe = false;
  // With observe: the node must be the one the previous observed step went to.
  bool same_node = false;
  // Flows in the worker's table after this step (e.g. a denied SYN created none).
  std::optional<uint32_t> flows_after = std::nullopt;
  // The worker's icmp_errors_translated after this step (ICMP errors about full-NAT flows).
  std::optional<uint64_t> icmp_errors_translated_after = std::nullopt;
};

struct Fixture {
  std::string description;
  std::vector<Step> steps;
  // Neighbours the worker knows before the first step (ip, mac) besides the static nodes.
  std::vector<std::pair<uint32_t, Mac>> known_neighbors = {};
  std::vector<std::pair<pkt::Ip6, Mac>> known_neighbors6 = {};
  // Exception path (fwd/exception.h): both ports get a kernel interface; the worker may
  // hand `exception_burst` frames to the kernel at once and `exception_rate` per second
  // (steps are 1 ms apart). kToKernel steps must leave the frame untouched.
  bool exception_path = false;
  uint32_t exception_rate = 1000;
  uint32_t exception_burst = 64;
  // SNAT hands out ports kPortMin..snat_port_max (the rest is the kernel's on a shared address).
  uint16_t snat_port_max = 65535;
};

// Step builders both tables use (fixtures.cc, fixtures6.cc).
// A frame from the client's MAC to the external port.
[[nodiscard]] PacketBuilder fromClient();
// `input` on `port` is dropped, counted as `reason`.
[[nodiscard]] Step dropStep(uint8_t port, Bytes input, fwd::DropReason reason);
// A client -> node forward whose output is checked field by field against a frame built
// fresh (so every checksum is verified) with the node and SNAT port the box chose; its
// output defines Observed.
[[nodiscard]] Step toNodeStep(Bytes input, std::function<Bytes(const Observed&)> expected);
// A node -> client forward; its input depends on what the box chose earlier.
[[nodiscard]] Step toClientStep(std::function<Bytes(const Observed&)> input,
                                std::function<Bytes(const Observed&)> expected);

// Applies a fixture's worker settings (exception path, SNAT range) to `env` and `ctx`.
void applyFixtureSettings(const Fixture& fx, Env& env);
void applyFixtureSettings(const Fixture& fx, fwd::WorkerContext& ctx);

[[nodiscard]] std::vector<Fixture> standardFixtures();
// IPv6 and dual-stack behaviour (fixtures6.cc): same topology, same runner.
[[nodiscard]] std::vector<Fixture> ipv6Fixtures();

// Frames used by fixtures and benchmarks.
[[nodiscard]] Bytes clientTcp(uint16_t client_port, uint8_t flags, size_t payload = 0);
[[nodiscard]] Bytes nodeTcp(uint32_t node_ip, uint16_t snat_port, uint8_t flags, size_t payload = 0);
[[nodiscard]] Bytes nodeUdp(uint32_t node_ip, uint16_t snat_port, size_t payload = 0);
[[nodiscard]] Bytes clientTcp6(uint16_t client_port, uint8_t flags, size_t payload = 0);
[[nodiscard]] Bytes nodeTcp6(const pkt::Ip6& node_ip, uint16_t snat_port, uint8_t flags, size_t payload = 0);
// A client TCP segment to the tunnel VIP (DF set, as Linux sends TCP).
[[nodiscard]] Bytes clientTunnelTcp(uint16_t client_port, uint8_t flags, size_t payload = 0, uint16_t port = 80);
// `inner` (an Ethernet + IPv4 frame) as the box must send it to `node` in tunnel mode,
// written out independently of the processor: internal MAC -> node MAC, outer IPv4
// header (TOS and DF copied, TTL 64, protocol 4, checksum), the inner IP packet as is
// (Ethernet padding dropped).
[[nodiscard]] Bytes ipipFrame(const Bytes& inner, uint32_t outer_src, uint32_t node, uint16_t outer_id);
// The ICMP frag-needed answer to `offending` (Ethernet + IPv4, as the client sent it),
// from `from` with next-hop MTU `mtu`, written out independently of the processor.
[[nodiscard]] Bytes fragNeededFrame(const Bytes& offending, uint32_t from, uint16_t mtu);
// `inner` (an Ethernet + IPv6 frame) as the box must send it to `node` in IPv6 tunnel
// mode, written out independently of the processor: internal MAC -> node MAC, outer IPv6
// header (traffic class copied, `flow_label`, next header 41, hop limit 64), the inner
// IPv6 packet as is.
[[nodiscard]] Bytes ip6ip6Frame(const Bytes& inner, const pkt::Ip6& outer_src, const pkt::Ip6& node,
                                uint32_t flow_label);
// The ICMPv6 Packet Too Big answer to `offending` (Ethernet + IPv6, as the client sent
// it), from `from` with MTU `mtu`, quoting up to 1232 bytes, written independently.
[[nodiscard]] Bytes packetTooBig6Frame(const Bytes& offending, const pkt::Ip6& from, uint32_t mtu);
// A client TCP segment to the IPv6 tunnel VIP.
[[nodiscard]] Bytes clientTunnelTcp6(uint16_t client_port, uint8_t flags, size_t payload = 0, uint16_t port = 80);

}  // namespace ng::test
