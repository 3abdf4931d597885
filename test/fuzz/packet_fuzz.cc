// libFuzzer target over the DPDK-free packet path: parse -> classify -> flow table ->
// rewrite (fwd::processFrame, processBurst, slowTick, onSnapshot), built with ASan and
// UBSan by scripts/fuzz.sh. test/fuzz/README.md has the input format, the invariants and
// how to reproduce a finding.
//
// Why the input is a program and not one frame: most of the path is stateful (a reply
// needs the flow its SYN created, expiry needs time to pass, a full table needs 256
// flows), so an input is a list of frames with ports, clock steps, bursts and slow ticks,
// and the worker state also lives across inputs (reset every NG_FUZZ_RESET_EVERY inputs).
//
// Why two workers: the primary runs bursts through processBurst where the program asks;
// the shadow runs every frame through processFrame. processBurst promises the same result
// as processFrame on each frame in order, so any difference between them is a finding.
//
// Every frame is an exact-size heap copy, so ASan reports a read or write one byte past
// it. The flow table lives in mmap()ed memory (lb::HugeArray) that ASan does not track;
// the structural checks below (sizes, both keys present) stand in for it there.

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/lb/maglev.h"
#include "dataplane/pkt/encap.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/parse6.h"
#include "dataplane/pkt/rewrite6.h"
#include "test/dataplane/fwd/fixtures.h"
#include "test/fuzz/program_format.h"

namespace ng::fuzz {
namespace {

using fwd::Action;
using fwd::WorkerContext;
using pkt::L3;
using pkt::ParsedFrame;
using pkt::ParseStatus;
using test::Topo;
namespace arp = pkt::arp;
namespace icmp = pkt::icmp;
namespace ipv4 = pkt::ipv4;
namespace tcp = pkt::tcp;
namespace udp = pkt::udp;

constexpr uint32_t kFlowCapacity = 256;       // small, so full-table paths are reachable
constexpr uint32_t kDefaultResetEvery = 512;  // inputs per world; NG_FUZZ_RESET_EVERY
// Ten simulated minutes before the millisecond clock wraps: long flows and expiry cross
// the wrap, which the processor promises to handle (differences modulo 2^32).
constexpr uint32_t kStartMs = 0u - 600'000u;

// Harness helpers that walk frames byte by byte or tally counters: compiled without
// coverage instrumentation, whose per-comparison callbacks there cost most of the run
// time and only describe the harness, not the packet path.
#define NG_FUZZ_UNTRACED __attribute__((no_sanitize("coverage")))

uint32_t dtMs(uint8_t dt) { return dt < 128 ? dt : (dt - 127u) * 1000u; }

// --- Topology: the fixture snapshot and two variants ------------------------------------

struct Topology {
  std::vector<fwd::PortInfo> ports;
  // 0: the fixtures' snapshot (with their source-range and ClientIP-affinity ports).
  // 1: node .11 removed from every service port (established flows keep it; remembered
  // clients are chosen again). 2: a second SNAT address, the UDP ports without backends,
  // TCP weights 2/1/0 (a remembered node may be draining), the source-range ports'
  // ranges swapped (established flows of a now-denied source continue), and a second VIP
  // whose node has no static MAC (ARP resolution paths).
  std::array<std::unique_ptr<fwd::ForwardingSnapshot>, 3> variants;
  std::set<std::pair<uint32_t, pkt::Mac>> static_macs;  // of every variant
  std::set<std::pair<pkt::Ip6, pkt::Mac>> static_macs6;
};

std::shared_ptr<const lb::MaglevTable> maglevOf(const std::vector<fwd::Backend>& backends) {
  std::vector<lb::MaglevBackend> ids;
  for (const fwd::Backend& b : backends) ids.push_back({.id = b.node_ip, .weight = b.weight});
  return std::make_shared<const lb::MaglevTable>(lb::MaglevTable::build(ids, 251));
}

Topology makeTopology() {
  test::Env env = test::makeEnv();
  // Both ports have a kernel interface (exception path), so the fuzzer also decides what
  // goes to the kernel; SNAT keeps 1024..kSnatPortMax (World) beside the kernel's ports.
  for (fwd::PortInfo& port : env.ports) port.exception_path = true;
  Topology t{.ports = env.ports};
  const fwd::ForwardingSnapshot& base = *env.snapshot;

  auto removed = std::make_unique<fwd::ForwardingSnapshot>(base);
  removed->generation = 2;
  for (fwd::ServicePort& sp : removed->service_ports) {
    std::erase_if(sp.backends, [](const fwd::Backend& b) { return b.node_ip == test::ip("10.200.0.11"); });
    sp.maglev = maglevOf(sp.backends);
  }
  std::erase(removed->resolve_targets, test::ip("10.200.0.11"));
  removed->finalize();

  auto other = std::make_unique<fwd::ForwardingSnapshot>(base);
  other->generation = 3;
  other->snat_addresses.push_back(test::ip("10.200.0.5"));
  for (fwd::ServicePort& sp : other->service_ports) {
    if (sp.proto == pkt::kProtoUdp) {
      sp.backends.clear();
      sp.maglev = nullptr;
    } else {
      for (size_t i = 0; i < sp.backends.size(); ++i) sp.backends[i].weight = static_cast<uint16_t>(2 - i);
      sp.maglev = maglevOf(sp.backends);
    }
    if (sp.port == test::SvcPorts::kOnlyClient) {
      sp.source_ranges = {fwd::prefixRange(test::ip("203.0.113.0"), 24)};
    } else if (sp.port == test::SvcPorts::kDocNets) {
      sp.source_ranges = {fwd::prefixRange(Topo::clientIp(), 32)};
    }
  }
  fwd::ServicePort https{.vip = test::ip("10.100.0.101"), .port = 443, .proto = pkt::kProtoTcp};
  https.backends = {fwd::Backend{.node_ip = test::ip("10.200.0.14"), .node_port = 30443, .weight = 1}};
  https.maglev = maglevOf(https.backends);
  other->service_ports.push_back(std::move(https));
  other->resolve_targets.push_back(test::ip("10.200.0.14"));
  other->finalize();

  t.variants = {std::move(env.snapshot), std::move(removed), std::move(other)};
  for (const auto& snap : t.variants) {
    for (const fwd::StaticNeighbor& n : snap->static_neighbors) t.static_macs.insert({n.ip, n.mac});
    for (const fwd::StaticNeighbor6& n : snap->static_neighbors6) t.static_macs6.insert({n.ip, n.mac});
  }
  return t;
}

// Addresses any variant may use as SNAT source, node, or VIP.
bool isAnySnatAddress(uint32_t a) { return a == Topo::intIp() || a == test::ip("10.200.0.5"); }
bool isAnyNode(uint32_t a) { return a >= test::ip("10.200.0.11") && a <= test::ip("10.200.0.14"); }
bool isAnyVip(uint32_t a) { return a == Topo::vip() || a == test::ip("10.100.0.101"); }
// IPv6 (every variant keeps the fixtures' IPv6 half).
bool isAnySnatAddress6(const pkt::Ip6& a) { return a == test::Topo6::intIp(); }
bool isAnyNode6(const pkt::Ip6& a) {
  const auto nodes = test::Topo6::nodes();
  return std::find(nodes.begin(), nodes.end(), a) != nodes.end();
}
bool isAnyVip6(const pkt::Ip6& a) { return a == test::Topo6::vip() || a == test::Topo6::tunnelVip(); }

// --- Harness state ----------------------------------------------------------------------

constexpr uint32_t kBackendStats = 64;
constexpr uint16_t kSnatPortMax = 32767;  // the rest is the kernel's (exception path)

struct World {
  explicit World(const Topology& t)
      // A small backend-stats arena: contexts are rebuilt on every world reset, and
      // zeroing the production-size 4 MiB one each time cut executions 15-fold.
      : primary(0, t.ports, kFlowCapacity, 0, kBackendStats, kFlowCapacity),
        shadow(0, t.ports, kFlowCapacity, 0, kBackendStats, kFlowCapacity),
        snap(t.variants[0].get()) {
    for (WorkerContext* ctx : {&primary, &shadow}) {
      ctx->snat.setPortRange(lb::SnatAllocator::kPortMin, kSnatPortMax);
      ctx->exception.configure(/*rate=*/2000, /*burst=*/32, now);  // reachable by a program
      fwd::onSnapshot(*ctx, *snap, now);
      ctx->neighbors.learn(Topo::clientIp(), Topo::clientMac(), now);  // as the fixture tests do
      ctx->neighbors6.learn(test::Topo6::clientIp(), Topo::clientMac(), now);
    }
    announced.insert({primary.external_port, Topo::clientIp(), Topo::clientMac()});
    announced6.insert({primary.external_port, test::Topo6::clientIp(), Topo::clientMac()});
  }
  WorkerContext primary;  // bursts where the program asks
  WorkerContext shadow;   // one frame at a time: the reference for the primary
  const fwd::ForwardingSnapshot* snap;
  uint32_t now = kStartMs;
  uint64_t frames = 0;  // processed by the shadow since the reset
  uint64_t drops = 0;
  uint64_t forwards = 0;
  uint64_t consumed = 0;
  uint64_t to_kernel = 0;
  uint32_t inputs = 0;
  // (port, address, MAC) of every ARP sender heard, whatever the verdict: the MACs a
  // next hop may be sent to out of that port (besides the configured static ones).
  std::set<std::tuple<uint8_t, uint32_t, pkt::Mac>> announced;
  // IPv6: (port, address, MAC) of every NS source link-layer option and NA target
  // link-layer option heard.
  std::set<std::tuple<uint8_t, pkt::Ip6, pkt::Mac>> announced6;
};

struct Harness {
  Topology topo;
  std::unique_ptr<World> world;
  uint32_t reset_every = kDefaultResetEvery;
  std::string artifact_prefix = "./";
  // Every program since the last reset, normalised (exact lengths, first one with the
  // reset bit), so an invariant failure can leave a replayable file behind.
  std::vector<uint8_t> history;
};

Harness& harness() {
  static Harness* h = new Harness{.topo = makeTopology()};  // never destroyed: no exit-order issues
  return *h;
}

// Builds two WorkerContexts from scratch (mmap()ed flow tables, neighbour tables): about
// 0.2 ms under ASan, more than most whole inputs cost, hence at most once per input.
void resetWorld() {
  Harness& h = harness();
  h.world.reset();
  h.world = std::make_unique<World>(h.topo);
  h.history.clear();
}

// --- Failure reporting ------------------------------------------------------------------

// The frame being checked, for the report.
struct Current {
  std::span<const std::byte> in;
  std::span<const std::byte> out;
  uint8_t port = 0;
  int verdict = -1;
  int out_port = -1;
} current;

void printHex(const char* label, std::span<const std::byte> bytes) {
  std::fprintf(stderr, "%s (%zu bytes):", label, bytes.size());
  for (size_t i = 0; i < bytes.size() && i < 2048; ++i) {
    std::fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n  " : "", std::to_integer<unsigned>(bytes[i]));
  }
  std::fprintf(stderr, "\n");
}

[[noreturn]] void fail(const char* what) {
  Harness& h = harness();
  std::fprintf(stderr, "\npacket_fuzz: INVARIANT VIOLATED: %s\n", what);
  if (h.world) {
    const World& w = *h.world;
    std::fprintf(stderr, "  world: %u inputs and %llu frames since the last reset, clock %u ms\n", w.inputs,
                 static_cast<unsigned long long>(w.frames), w.now);
  }
  std::fprintf(stderr, "  frame: in port %u, verdict %d (0 drop, 1 forward, 2 consumed, 5 to kernel), out port %d\n",
               current.port, current.verdict, current.out_port);
  printHex("  input", current.in);
  printHex("  output", current.out);
  const std::string path = h.artifact_prefix + "state-history-" + std::to_string(getpid());
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(h.history.data(), 1, h.history.size(), f);
    std::fclose(f);
    std::fprintf(stderr, "  programs since the last reset, replay with: packet_fuzz %s\n", path.c_str());
  }
  std::fflush(stderr);
  __builtin_trap();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

// --- Frame helpers (lenient, harness-side: not the parser under test) ---------------------

// An exact-size heap copy behind exactly fwd::kTunnelHeadroom bytes of headroom (what the
// processor is told it may use): the byte after the frame, and the byte before the
// headroom, are outside the allocation.
constexpr size_t kHeadroom = fwd::kTunnelHeadroom;
struct Buf {
  std::unique_ptr<std::byte[]> data;
  size_t size = 0;
  [[nodiscard]] std::span<std::byte> span() const { return {data.get() + kHeadroom, size}; }
  // The frame as it leaves after `a` (Action::prepended / length).
  [[nodiscard]] std::span<std::byte> sent(const Action& a) const {
    if (a.kind != Action::Kind::kForward || a.length == 0) return span();
    return {data.get() + kHeadroom - a.prepended, a.length};
  }
};

Buf copyOf(std::span<const std::byte> bytes) {
  Buf b{.data = std::unique_ptr<std::byte[]>(new std::byte[kHeadroom + bytes.size()]), .size = bytes.size()};
  std::memset(b.data.get(), 0, kHeadroom);
  if (!bytes.empty()) std::memcpy(b.data.get() + kHeadroom, bytes.data(), bytes.size());
  return b;
}

struct Ipv4Layout {
  size_t l3;
  size_t ihl;
  size_t l4;
  size_t l4_len;  // to the IP total length, clamped to the frame
  uint8_t proto;
  bool first_fragment;
};

NG_FUZZ_UNTRACED std::optional<Ipv4Layout> ipv4Layout(std::span<const std::byte> f) {
  if (f.size() < pkt::kEthHeaderLen) return std::nullopt;
  size_t type_at = 12;
  uint16_t type = pkt::load16(f.data() + type_at);
  if (type == pkt::kEtherTypeVlan || type == pkt::kEtherTypeQinQ) {
    if (f.size() < pkt::kEthHeaderLen + pkt::kVlanTagLen) return std::nullopt;
    type_at += pkt::kVlanTagLen;
    type = pkt::load16(f.data() + type_at);
  }
  const size_t l3 = type_at + 2;
  if (type != pkt::kEtherTypeIpv4 || f.size() < l3 + pkt::kIpv4MinLen) return std::nullopt;
  const size_t ihl = (std::to_integer<size_t>(f[l3]) & 0x0f) * 4;
  if (ihl < pkt::kIpv4MinLen || f.size() < l3 + ihl) return std::nullopt;
  const size_t total = std::clamp<size_t>(pkt::load16(f.data() + l3 + ipv4::kTotalLen), ihl, f.size() - l3);
  return Ipv4Layout{.l3 = l3, .ihl = ihl, .l4 = l3 + ihl, .l4_len = total - ihl,
                    .proto = std::to_integer<uint8_t>(f[l3 + ipv4::kProto]),
                    .first_fragment = (pkt::load16(f.data() + l3 + ipv4::kFragOff) & ipv4::kOffsetMask) == 0};
}

uint32_t pseudoHeader(uint32_t src, uint32_t dst, uint8_t proto, size_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + static_cast<uint32_t>(len);
}

// Internet checksum (RFC 1071) of `bytes` plus `sum`, ready to store; 0 when `bytes`
// already holds a correct checksum. Written apart from pkt::checksumAdd on purpose: the
// rewrite is checked against an independent implementation.
NG_FUZZ_UNTRACED uint16_t refChecksum(std::span<const std::byte> bytes, uint32_t sum = 0) {
  uint64_t acc = sum;
  for (size_t i = 0; i < bytes.size(); ++i) acc += std::to_integer<uint64_t>(bytes[i]) << (i % 2 == 0 ? 8 : 0);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// The IPv6 pseudo-header (RFC 8200 8.1) summed with the harness's own arithmetic.
uint32_t pseudoHeader6(const pkt::Ip6& src, const pkt::Ip6& dst, uint8_t next, size_t len) {
  uint32_t sum = next + static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
  for (uint64_t w : {src.hi, src.lo, dst.hi, dst.lo}) {
    for (int shift = 48; shift >= 0; shift -= 16) sum += static_cast<uint32_t>((w >> shift) & 0xffff);
  }
  return sum;
}

NG_FUZZ_UNTRACED bool sameBytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Copy `index` of a repeated record: the client's source port (port 0) or the SNAT port
// a node replies to (port 1) moves on by `index`, so one record can open many flows or
// answer many of them.
NG_FUZZ_UNTRACED void varyFlowPort(std::span<std::byte> f, uint8_t port, uint32_t index) {
  if (index != 0) {
    ParsedFrame p;
    if (pkt::parseFrame(f, p) == ParseStatus::kOk && p.l3 == L3::kIpv6 && p.first_fragment &&
        (p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp)) {
      std::byte* at = f.data() + p.l4_offset + (port == 0 ? 0 : 2);
      pkt::store16(at, static_cast<uint16_t>(pkt::load16(at) + index));
      return;
    }
  }
  const auto l = ipv4Layout(f);
  if (index == 0 || !l || !l->first_fragment || (l->proto != pkt::kProtoTcp && l->proto != pkt::kProtoUdp) ||
      f.size() < l->l4 + 4) {
    return;
  }
  std::byte* at = f.data() + l->l4 + (port == 0 ? 0 : 2);
  pkt::store16(at, static_cast<uint16_t>(pkt::load16(at) + index));
}

NG_FUZZ_UNTRACED void fixIpChecksum(std::span<std::byte> f) {
  const auto l = ipv4Layout(f);
  if (!l) return;
  pkt::store16(f.data() + l->l3 + ipv4::kChecksum, 0);
  pkt::store16(f.data() + l->l3 + ipv4::kChecksum, refChecksum(f.subspan(l->l3, l->ihl)));
}

NG_FUZZ_UNTRACED void fixL4Checksum(std::span<std::byte> f) {
  // IPv6 (TCP, UDP, ICMPv6; a first fragment's checksum covers the whole datagram,
  // fixed over this fragment only - the fuzzer gains reach either way).
  ParsedFrame p6;
  const ParseStatus st6 = pkt::parseFrame(f, p6);
  if ((st6 == ParseStatus::kOk || st6 == ParseStatus::kBadL4Header) && p6.l3 == L3::kIpv6 && p6.first_fragment &&
      p6.l4_len >= pkt::kUdpLen) {
    const size_t off = p6.proto == pkt::kProtoTcp ? tcp::kChecksum
                       : p6.proto == pkt::kProtoUdp ? udp::kChecksum
                       : p6.proto == pkt::kProtoIcmp6 ? icmp::kChecksum
                                                      : 0;
    if (off == 0 || (p6.proto == pkt::kProtoTcp && p6.l4_len < pkt::kTcpMinLen)) return;
    std::byte* l4 = f.data() + p6.l4_offset;
    pkt::store16(l4 + off, 0);
    const uint16_t c = refChecksum(f.subspan(p6.l4_offset, p6.l4_len),
                                   pseudoHeader6(pkt::srcIp6(f, p6), pkt::dstIp6(f, p6), p6.proto, p6.l4_len));
    pkt::store16(l4 + off, p6.proto == pkt::kProtoUdp && c == 0 ? 0xffff : c);
    return;
  }
  const auto l = ipv4Layout(f);
  if (!l || !l->first_fragment) return;
  const uint32_t src = pkt::load32(f.data() + l->l3 + ipv4::kSrc);
  const uint32_t dst = pkt::load32(f.data() + l->l3 + ipv4::kDst);
  std::byte* l4 = f.data() + l->l4;
  switch (l->proto) {
    case pkt::kProtoTcp:
      if (l->l4_len < pkt::kTcpMinLen) return;
      pkt::store16(l4 + tcp::kChecksum, 0);
      pkt::store16(l4 + tcp::kChecksum,
                   refChecksum(f.subspan(l->l4, l->l4_len), pseudoHeader(src, dst, pkt::kProtoTcp, l->l4_len)));
      return;
    case pkt::kProtoUdp: {
      if (l->l4_len < pkt::kUdpLen) return;
      size_t len = pkt::load16(l4 + udp::kLength);
      if (len < pkt::kUdpLen || len > l->l4_len) len = l->l4_len;
      pkt::store16(l4 + udp::kChecksum, 0);
      const uint16_t c = refChecksum(f.subspan(l->l4, len), pseudoHeader(src, dst, pkt::kProtoUdp, len));
      pkt::store16(l4 + udp::kChecksum, c == 0 ? 0xffff : c);
      return;
    }
    case pkt::kProtoIcmp:
      if (l->l4_len < pkt::kIcmpMinLen) return;
      pkt::store16(l4 + icmp::kChecksum, 0);
      pkt::store16(l4 + icmp::kChecksum, refChecksum(f.subspan(l->l4, l->l4_len)));
      return;
    default:
      return;
  }
}

// Whether the L4 checksum of a parsed IPv4 frame verifies; nullopt when it has none
// (a fragment, another protocol, or UDP without a checksum).
NG_FUZZ_UNTRACED std::optional<bool> l4ChecksumOk(std::span<const std::byte> f, const ParsedFrame& p) {
  // A fragment's checksum covers the whole datagram, not this fragment: unknowable here.
  if (p.l3 != L3::kIpv4 || p.is_fragment) return std::nullopt;
  const auto l4 = f.subspan(p.l4_offset, p.l4_len);
  switch (p.proto) {
    case pkt::kProtoTcp:
      return refChecksum(l4, pseudoHeader(p.src_ip, p.dst_ip, p.proto, l4.size())) == 0;
    case pkt::kProtoUdp: {
      if (pkt::load16(l4.data() + udp::kChecksum) == 0) return std::nullopt;
      const size_t len = pkt::load16(l4.data() + udp::kLength);  // parser: 8 <= len <= l4_len
      return refChecksum(l4.first(len), pseudoHeader(p.src_ip, p.dst_ip, p.proto, len)) == 0;
    }
    case pkt::kProtoIcmp:
      return refChecksum(l4) == 0;
    default:
      return std::nullopt;
  }
}

NG_FUZZ_UNTRACED std::optional<bool> l4ChecksumOk6(std::span<const std::byte> f, const ParsedFrame& p) {
  if (p.l3 != L3::kIpv6 || p.is_fragment) return std::nullopt;
  if (p.proto != pkt::kProtoTcp && p.proto != pkt::kProtoUdp && p.proto != pkt::kProtoIcmp6) return std::nullopt;
  const auto l4 = f.subspan(p.l4_offset, p.l4_len);
  return refChecksum(l4, pseudoHeader6(pkt::srcIp6(f, p), pkt::dstIp6(f, p), p.proto, l4.size())) == 0;
}

pkt::Mac macAt(std::span<const std::byte> f, size_t at) { return pkt::loadMac(f.data() + at); }

// True when byte `i` belongs to a field the rewrite of `p`'s kind may change.
NG_FUZZ_UNTRACED bool rewritable(const ParsedFrame& p, size_t i) {
  if (i < 12) return true;  // destination and source MAC
  const size_t l3 = p.l3_offset;
  if (p.l3 == L3::kArp) return i >= l3 + arp::kOper && i < l3 + pkt::kArpLen;
  if (p.l3 == L3::kIpv6) {
    if (i == l3 + pkt::ipv6::kHopLimit || (i >= l3 + pkt::ipv6::kSrc && i < l3 + pkt::ipv6::kDst + 16)) return true;
    if (p.frag6_offset != 0 && i >= p.frag6_offset + pkt::ipv6::kFragId && i < p.frag6_offset + pkt::ipv6::kFragId + 4u) {
      return true;  // renumbered
    }
    if (!p.first_fragment) return false;
    const size_t l4 = p.l4_offset;
    switch (p.proto) {
      case pkt::kProtoIcmp6: return i == l4 + icmp::kType || i == l4 + icmp::kChecksum || i == l4 + icmp::kChecksum + 1;
      case pkt::kProtoTcp: return (i >= l4 && i < l4 + 4) || i == l4 + tcp::kChecksum || i == l4 + tcp::kChecksum + 1;
      case pkt::kProtoUdp: return (i >= l4 && i < l4 + 4) || i == l4 + udp::kChecksum || i == l4 + udp::kChecksum + 1;
      default: return false;
    }
  }
  if (i == l3 + ipv4::kTtl || (i >= l3 + ipv4::kChecksum && i < l3 + ipv4::kDst + 4)) return true;
  if (p.is_fragment && (i == l3 + ipv4::kId || i == l3 + ipv4::kId + 1)) return true;  // renumbered
  if (!p.first_fragment) return false;  // a later fragment's payload is never touched
  const size_t l4 = p.l4_offset;
  switch (p.proto) {
    case pkt::kProtoIcmp: return i == l4 + icmp::kType || i == l4 + icmp::kChecksum || i == l4 + icmp::kChecksum + 1;
    case pkt::kProtoTcp: return (i >= l4 && i < l4 + 4) || i == l4 + tcp::kChecksum || i == l4 + tcp::kChecksum + 1;
    case pkt::kProtoUdp: return (i >= l4 && i < l4 + 4) || i == l4 + udp::kChecksum || i == l4 + udp::kChecksum + 1;
    default: return false;
  }
}

NG_FUZZ_UNTRACED bool onlyRewritableChanged(std::span<const std::byte> in, const ParsedFrame& p,
                                            std::span<const std::byte> out) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != out[i] && !rewritable(p, i)) return false;
  }
  return true;
}

// parse.h's contract: a kOk result describes headers that lie inside the frame and,
// for IPv4, inside the total length. Checked before the harness trusts its offsets.
// Also: parseFrame's short path (pkt::detail::parseSimpleIpv4) accepts only frames the
// general parser accepts, and describes them field for field the same way.
void checkParsed(std::span<const std::byte> f, const pkt::ParseResult& r) {
  ParsedFrame simple;
  if (pkt::detail::parseSimpleIpv4(f, simple)) {
    ParsedFrame general;
    require(pkt::detail::parseFrameGeneral(f, general) == ParseStatus::kOk &&
                std::memcmp(&simple, &general, sizeof(ParsedFrame)) == 0,
            "parse: the simple IPv4 path and the general parser disagree");
  }
  if (r.status != ParseStatus::kOk) return;
  const ParsedFrame& p = r.frame;
  if (p.l3 == L3::kArp) {
    require(size_t{p.l3_offset} + pkt::kArpLen <= f.size(), "parse: ARP body past the frame");
    return;
  }
  if (p.l3 == L3::kIpv6) {
    require(p.ip_header_len >= pkt::kIpv6HeaderLen && p.ip_header_len <= p.ip_total_len &&
                size_t{p.l3_offset} + p.ip_total_len <= f.size(),
            "parse: IPv6 header, extension headers or payload length past the frame");
    require(p.ip_header_len - pkt::kIpv6HeaderLen <= pkt::kMaxExtHeaderBytes,
            "parse: IPv6 extension headers past the bound");
    require(p.l4_offset == p.l3_offset + p.ip_header_len && p.l4_len == p.ip_total_len - p.ip_header_len,
            "parse: L4 offset or length inconsistent with the IPv6 headers");
    require(p.frag6_offset == 0 || (p.frag6_offset >= p.l3_offset + pkt::kIpv6HeaderLen &&
                                    p.frag6_offset + pkt::ipv6::kFragHeaderLen <= p.l4_offset),
            "parse: Fragment header outside the extension headers");
    if (!p.first_fragment) return;
    const size_t min6 = p.proto == pkt::kProtoTcp ? pkt::kTcpMinLen
                        : p.proto == pkt::kProtoUdp ? pkt::kUdpLen
                        : p.proto == pkt::kProtoIcmp6 ? pkt::kIcmpMinLen
                                                      : 0;
    require(p.l4_len >= min6, "parse: L4 header longer than the IPv6 payload");
    return;
  }
  require(p.l3 == L3::kIpv4, "parse: kOk without ARP, IPv4 or IPv6");
  require(p.ip_header_len >= pkt::kIpv4MinLen && p.ip_header_len <= p.ip_total_len &&
              size_t{p.l3_offset} + p.ip_total_len <= f.size(),
          "parse: IPv4 header or total length past the frame");
  require(p.l4_offset == p.l3_offset + p.ip_header_len && p.l4_len == p.ip_total_len - p.ip_header_len,
          "parse: L4 offset or length inconsistent with the IPv4 header");
  if (!p.first_fragment) return;
  const size_t min_l4 = p.proto == pkt::kProtoTcp ? pkt::kTcpMinLen
                        : p.proto == pkt::kProtoUdp ? pkt::kUdpLen
                        : p.proto == pkt::kProtoIcmp ? pkt::kIcmpMinLen
                                                     : 0;
  require(p.l4_len >= min_l4, "parse: L4 header longer than the IPv4 payload");
}

// --- Invariants of one frame's verdict (on the shadow, which decides frame by frame) ----

// IPv6 forwards (fwd/processor6.cc, fwd/nd.cc): an NA answering an NS, an echo reply,
// or full-NAT IPv6 -> IPv6.
void checkForward6(const World& w, uint8_t in_port, std::span<const std::byte> in, const ParsedFrame& p,
                   std::span<const std::byte> out, const ParsedFrame& q, uint8_t out_port, bool had_flow) {
  const WorkerContext& ctx = w.shadow;
  require(q.l3 == L3::kIpv6, "IPv6 forward: the output is not IPv6");
  const pkt::Ip6 in_src = pkt::srcIp6(in, p), in_dst = pkt::dstIp6(in, p);
  const pkt::Ip6 out_src = pkt::srcIp6(out, q), out_dst = pkt::dstIp6(out, q);
  if (p.proto == pkt::kProtoIcmp6 && p.icmp_type == pkt::icmp6::kNeighborSolicitation) {
    require(out_port == in_port && q.icmp_type == pkt::icmp6::kNeighborAdvertisement && q.ttl == 255,
            "ND: an NS is answered by an NA with hop limit 255 on the port it came from");
    require(p.ttl == 255 && !p.is_fragment, "ND: answered an NS that was routed or fragmented");
    const pkt::Ip6 target = pkt::loadIp6(in.data() + p.l4_offset + pkt::icmp6::kNdTarget);
    require(pkt::loadIp6(out.data() + q.l4_offset + pkt::icmp6::kNdTarget) == target && out_src == target,
            "ND: the NA is not for the solicited target, or not from it");
    require(ctx.ports[in_port].isOwn6(target) || isAnyVip6(target) || isAnySnatAddress6(target),
            "ND: answered for an address that is not ours");
    require(l4ChecksumOk6(out, q) == true, "ND: the NA's checksum does not verify");
    require(l4ChecksumOk6(in, p) == true, "ND: answered an NS whose checksum does not verify");
    return;
  }
  if (p.proto == pkt::kProtoIcmp6 && p.icmp_type == pkt::icmp6::kPacketTooBig) {
    // Translated toward the other side of the flow its quote belongs to (processor6.cc).
    require(out_port != in_port && q.icmp_type == pkt::icmp6::kPacketTooBig && p.ttl >= 2 && q.ttl == p.ttl - 1,
            "PTB: must leave by the other port, hop limit one lower");
    require(q.ip_total_len == p.ip_total_len && l4ChecksumOk6(in, p) == true && l4ChecksumOk6(out, q) == true,
            "PTB: length changed, or forwarded with a checksum that does not verify");
    require(pkt::load32(out.data() + q.l4_offset + 4) == pkt::load32(in.data() + p.l4_offset + 4), "PTB: the MTU changed");
    const std::byte* quoted = out.data() + q.l4_offset + pkt::icmp6::kErrorQuote;
    // The translated quote is the other side's own packet (node -> SNAT6, or client ->
    // VIP6): as it stands, a key of the flow table.
    const lb::FlowKey6 as_sent{.src_ip = pkt::loadIp6(quoted + pkt::ipv6::kSrc), .dst_ip = pkt::loadIp6(quoted + pkt::ipv6::kDst),
                               .src_port = pkt::load16(quoted + 40), .dst_port = pkt::load16(quoted + 42),
                               .proto = std::to_integer<uint8_t>(quoted[pkt::ipv6::kNextHeader])};
    require(ctx.flows6.contains(as_sent), "PTB: the translated quote is not a packet of one of our flows");
    require(out_port == ctx.internal_port ? isAnySnatAddress6(out_src) && isAnyNode6(out_dst) : isAnyVip6(out_src),
            "PTB: to a node from SNAT6, to a client from the VIP");
    return;
  }
  require(onlyRewritableChanged(in, p, out), "IPv6 forward: a byte outside the rewritten header fields changed");
  require(q.proto == p.proto && q.ip_total_len == p.ip_total_len && q.ip_header_len == p.ip_header_len,
          "IPv6 forward: protocol or lengths changed");
  require(l4ChecksumOk6(out, q) == l4ChecksumOk6(in, p), "IPv6 forward: L4 checksum validity changed");
  if (p.proto == pkt::kProtoIcmp6) {
    require(out_port == in_port && p.icmp_type == pkt::icmp6::kEchoRequest && q.icmp_type == pkt::icmp6::kEchoReply,
            "ICMPv6: only echo requests are answered, on the port they came from");
    require(out_src == in_dst && out_dst == in_src && q.ttl == 64 && macAt(out, 0) == macAt(in, 6),
            "ICMPv6: echo reply not addressed back to the requester");
    return;
  }
  require(p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp || !p.first_fragment,
          "IPv6 forward: protocol is not TCP/UDP/ICMPv6");
  require(out_port != in_port, "NAT6: forwarded out of the port it came in on");
  require(p.ttl >= 2 && q.ttl == p.ttl - 1, "NAT6: hop limit not decremented by one (or forwarded at <= 1)");
  require(p.routing_left == 0, "NAT6: forwarded with a Routing header's segments left");
  require(!in_src.isMulticast() && !in_src.isZero() && !in_src.isLoopback() && !in_src.isLinkLocal(),
          "NAT6: forwarded from a martian source");
  if (!p.first_fragment) {
    if (out_port == ctx.internal_port) {
      require(isAnySnatAddress6(out_src) && isAnyNode6(out_dst), "fragment6 to a node: from SNAT6 to a node");
    } else {
      require(isAnyVip6(out_src) && isAnyNode6(in_src), "fragment6 to a client: from a node, as the VIP");
    }
    return;
  }
  auto key = [&](const pkt::Ip6& s, const pkt::Ip6& d, uint16_t sp, uint16_t dp) {
    return lb::FlowKey6{.src_ip = s, .dst_ip = d, .src_port = sp, .dst_port = dp, .proto = p.proto};
  };
  require(ctx.flows6.contains(key(in_src, in_dst, p.src_port, p.dst_port)) &&
              ctx.flows6.contains(key(out_dst, out_src, q.dst_port, q.src_port)),
          "NAT6: the IPv6 flow table lacks the key the frame came with or the key its answer will carry");
  if (out_port == ctx.internal_port) {
    require(isAnySnatAddress6(out_src) && q.src_port >= lb::SnatAllocator6::kPortMin && isAnyNode6(out_dst),
            "NAT6 to a node: source must be a SNAT6 address:port, destination a node");
    if (!had_flow) {
      const fwd::ServicePort6* sp = w.snap->find6(in_dst, p.dst_port, p.proto);
      require(sp != nullptr && sp->allowsSource(in_src), "NAT6 to a node: a new flow from a denied source");
    }
  } else {
    require(isAnyVip6(out_src) && isAnyNode6(in_src), "NAT6 to a client: must come from a node and leave as a VIP");
  }
  const pkt::Ip6 hop = ctx.ports[out_port].nextHop6(out_dst);
  const pkt::Mac dst_mac = macAt(out, 0);
  require(harness().topo.static_macs6.contains({hop, dst_mac}) || w.announced6.contains({out_port, hop, dst_mac}),
          "NAT6: sent to a next-hop MAC never announced on the out port");
}

// An IPv4 ICMP destination unreachable / time exceeded translated toward the other side
// of the full-NAT flow its quote belongs to (fwd/processor.cc, handleIcmpError): only
// addresses, ports, TTL and checksums may change, every checksum that verified still
// does, and the translated quote is the other side's own packet.
bool isIcmpErrorForward(const ParsedFrame& p, uint8_t in_port, uint8_t out_port) {
  return p.l3 == L3::kIpv4 && p.proto == pkt::kProtoIcmp && in_port != out_port &&
         (p.icmp_type == icmp::kDestUnreachable || p.icmp_type == icmp::kTimeExceeded);
}

void checkIcmpErrorForward(const World& w, std::span<const std::byte> in, const ParsedFrame& p,
                           std::span<const std::byte> out, const ParsedFrame& q, uint8_t out_port) {
  const WorkerContext& ctx = w.shadow;
  require(!p.is_fragment && p.first_fragment, "ICMP error: translated a fragment");
  require(p.ttl >= 2 && q.ttl == p.ttl - 1, "ICMP error: TTL not decremented by one (or forwarded at TTL <= 1)");
  require(q.proto == p.proto && q.ip_total_len == p.ip_total_len && q.ip_header_len == p.ip_header_len &&
              q.icmp_type == p.icmp_type && q.icmp_code == p.icmp_code,
          "ICMP error: protocol, lengths, type or code changed");
  require(l4ChecksumOk(in, p) == true && l4ChecksumOk(out, q) == true,
          "ICMP error: translated one whose checksum did not verify, or the result does not verify");
  const size_t quote = p.l4_offset + pkt::kIcmpMinLen;
  require(p.l4_len >= pkt::kIcmpMinLen + pkt::kIpv4MinLen + 8, "ICMP error: translated a quote shorter than RFC 792's");
  const size_t ihl = (std::to_integer<size_t>(in[quote]) & 0x0f) * 4;
  require((std::to_integer<uint8_t>(in[quote]) >> 4) == 4 && ihl >= pkt::kIpv4MinLen &&
              p.l4_len >= pkt::kIcmpMinLen + ihl + 8,
          "ICMP error: translated a quote without a whole IPv4 header and 8 bytes");
  const uint8_t proto = std::to_integer<uint8_t>(in[quote + ipv4::kProto]);
  require(proto == pkt::kProtoTcp || proto == pkt::kProtoUdp, "ICMP error: translated a quote that is not TCP/UDP");
  const size_t ql4 = quote + ihl;
  const size_t quoted_l4 = p.l4_offset + p.l4_len - ql4;
  const size_t csum = proto == pkt::kProtoTcp ? tcp::kChecksum : udp::kChecksum;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == out[i]) continue;
    const bool ok = i < 12 || i == p.l3_offset + ipv4::kTtl ||
                    (i >= p.l3_offset + ipv4::kChecksum && i < p.l3_offset + ipv4::kDst + 4) ||
                    i == p.l4_offset + icmp::kChecksum || i == p.l4_offset + icmp::kChecksum + 1 ||
                    (i >= quote + ipv4::kChecksum && i < quote + ipv4::kDst + 4) || (i >= ql4 && i < ql4 + 4) ||
                    (quoted_l4 >= csum + 2 && (i == ql4 + csum || i == ql4 + csum + 1));
    require(ok, "ICMP error: a byte other than addresses, ports, TTL or checksums changed");
  }
  require((refChecksum(in.subspan(quote, ihl)) == 0) == (refChecksum(out.subspan(quote, ihl)) == 0),
          "ICMP error: the quoted IPv4 header checksum's validity changed");
  require(pkt::load32(out.data() + p.l4_offset + 4) == pkt::load32(in.data() + p.l4_offset + 4),
          "ICMP error: the MTU / unused word changed");
  const lb::FlowKey as_sent{.src_ip = pkt::load32(out.data() + quote + ipv4::kSrc),
                            .dst_ip = pkt::load32(out.data() + quote + ipv4::kDst),
                            .src_port = pkt::load16(out.data() + ql4), .dst_port = pkt::load16(out.data() + ql4 + 2),
                            .proto = proto};
  require(ctx.flows.contains(as_sent), "ICMP error: the translated quote is not a packet of one of our flows");
  require(as_sent.src_ip == q.dst_ip, "ICMP error: the quote was not sent by the error's new destination");
  require(out_port == ctx.internal_port ? isAnySnatAddress(q.src_ip) && isAnyNode(q.dst_ip) : isAnyVip(q.src_ip),
          "ICMP error: to a node from a SNAT address, to a client from the VIP");
}

// `had_flow`: the flow table held the frame's key before the frame was processed.
void checkForward(const World& w, uint8_t in_port, std::span<const std::byte> in, const ParsedFrame& p,
                  std::span<const std::byte> out, uint8_t out_port, bool had_flow) {
  const WorkerContext& ctx = w.shadow;
  require(out_port < ctx.ports.size(), "forward: out_port is not a port slot");
  require(out.size() == in.size(), "forward: frame length changed");
  const pkt::ParseResult r = pkt::parseFrame(out);
  require(r.status == ParseStatus::kOk, "forward: the output frame does not parse");
  checkParsed(out, r);
  const ParsedFrame& q = r.frame;
  require(macAt(out, 6) == ctx.ports[out_port].mac, "forward: source MAC is not the out port's");
  // IPv6: checkForward6 judges the bytes (an NA rewrites the whole NS body).
  if (isIcmpErrorForward(p, in_port, out_port)) {
    require(refChecksum(out.subspan(q.l3_offset, q.ip_header_len)) == 0,
            "ICMP error: IPv4 header checksum does not verify after the rewrite");
    checkIcmpErrorForward(w, in, p, out, q, out_port);
    return;
  }
  require(p.l3 == L3::kIpv6 || onlyRewritableChanged(in, p, out),
          "forward: a byte outside the rewritten header fields changed");

  if (p.l3 == L3::kArp) {
    require(out_port == in_port && q.l3 == L3::kArp && q.arp_op == arp::kReply && p.arp_op == arp::kRequest,
            "ARP: a forwarded ARP frame must be our reply to a request, on the port it came from");
    require(q.arp_spa == p.arp_tpa && q.arp_tpa == p.arp_spa && macAt(out, 0) == p.arp_sha &&
                q.arp_sha == ctx.ports[out_port].mac,
            "ARP: reply addresses do not answer the request");
    return;
  }
  if (p.l3 == L3::kIpv6) {
    checkForward6(w, in_port, in, p, out, q, out_port, had_flow);
    return;
  }
  require(p.l3 == L3::kIpv4 && q.l3 == L3::kIpv4, "forward: neither ARP, IPv4 nor IPv6");
  // The input's header checksum verified (the parser rejects bad ones), so the output's must.
  require(refChecksum(out.subspan(q.l3_offset, q.ip_header_len)) == 0,
          "forward: IPv4 header checksum does not verify after the rewrite");
  require(q.proto == p.proto && q.ip_total_len == p.ip_total_len && q.ip_header_len == p.ip_header_len,
          "forward: protocol or lengths changed");
  require(l4ChecksumOk(out, q) == l4ChecksumOk(in, p),
          "forward: L4 checksum validity changed (a good one must stay good, a bad one bad)");
  if (p.proto == pkt::kProtoUdp) {
    require((pkt::load16(in.data() + p.l4_offset + udp::kChecksum) == 0) ==
                (pkt::load16(out.data() + q.l4_offset + udp::kChecksum) == 0),
            "forward: UDP checksum 0 (none) must stay 0, and only 0");
  }

  if (p.proto == pkt::kProtoIcmp) {
    require(out_port == in_port && p.icmp_type == icmp::kEchoRequest && q.icmp_type == icmp::kEchoReply,
            "ICMP: only echo requests are answered, on the port they came from");
    require(q.src_ip == p.dst_ip && q.dst_ip == p.src_ip && q.ttl == 64 && macAt(out, 0) == macAt(in, 6),
            "ICMP: echo reply not addressed back to the requester");
    return;
  }
  require(p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp, "forward: protocol is not TCP/UDP/ICMP");
  require(out_port != in_port, "NAT: forwarded out of the port it came in on");
  require(p.ttl >= 2 && q.ttl == p.ttl - 1, "NAT: TTL not decremented by one (or forwarded at TTL <= 1)");
  if (!p.first_fragment) {
    // A later fragment: no ports, so no flow key; it must look like its first fragment
    // did (fragment policy, fwd/processor.cc).
    if (out_port == ctx.internal_port) {
      require(isAnySnatAddress(q.src_ip) && isAnyNode(q.dst_ip),
              "fragment to a node: source must be a SNAT address, destination a node");
    } else {
      require(isAnyVip(q.src_ip) && isAnyNode(p.src_ip), "fragment to a client: must come from a node and leave as a VIP");
    }
    return;
  }
  auto key = [&](uint32_t s, uint32_t d, uint16_t sp, uint16_t dp) {
    return lb::FlowKey{.src_ip = s, .dst_ip = d, .src_port = sp, .dst_port = dp, .proto = p.proto};
  };
  const lb::FlowKey in_key = key(p.src_ip, p.dst_ip, p.src_port, p.dst_port);
  const lb::FlowKey reply_key = key(q.dst_ip, q.src_ip, q.dst_port, q.src_port);  // the answer to `out`
  require(ctx.flows.contains(in_key) && ctx.flows.contains(reply_key),
          "NAT: the flow table lacks the key the frame came with or the key its answer will carry");
  if (out_port == ctx.internal_port) {
    require(isAnySnatAddress(q.src_ip) && q.src_port >= lb::SnatAllocator::kPortMin && isAnyNode(q.dst_ip),
            "NAT to a node: source must be a SNAT address:port, destination a node");
    if (!had_flow) {
      const fwd::ServicePort* sp = w.snap->find(p.dst_ip, p.dst_port, p.proto);
      require(sp != nullptr && sp->allowsSource(p.src_ip),
              "NAT to a node: a new flow from a source outside the service port's source ranges");
    }
  } else {
    require(isAnyVip(q.src_ip) && isAnyNode(p.src_ip), "NAT to a client: must come from a node and leave as a VIP");
  }
  // Like Linux's per-interface neighbour tables: only what was announced on the port the
  // frame leaves by (or configured) says where a next hop is. An ARP heard on the client
  // side claiming a node's address must not steer traffic on the node side.
  const uint32_t hop = ctx.ports[out_port].nextHop(q.dst_ip);
  const pkt::Mac dst_mac = macAt(out, 0);
  require(harness().topo.static_macs.contains({hop, dst_mac}) || w.announced.contains({out_port, hop, dst_mac}),
          "NAT: sent to a next-hop MAC never announced on the out port (ARP learned from the other port)");
}

// Tunnel mode (Action::length != 0): an IPIP frame to a node, the input's IP packet
// unchanged inside; or an ICMP frag-needed answer to the client in place of the input.
void checkReshaped(const World& w, uint8_t in_port, std::span<const std::byte> in, const ParsedFrame& p,
                   std::span<const std::byte> out, Action a) {
  const WorkerContext& ctx = w.shadow;
  require(p.l3 == L3::kIpv4 && (p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp) && !p.has_vlan,
          "tunnel: only TCP/UDP over IPv4 is encapsulated or answered with frag-needed");
  require(in_port == ctx.external_port, "tunnel: only client frames are reshaped");
  require(p.l3_offset == pkt::kEthHeaderLen && in.size() >= pkt::kEthHeaderLen + p.ip_total_len,
          "tunnel: input layout");
  const std::span<const std::byte> inner = in.subspan(pkt::kEthHeaderLen, p.ip_total_len);
  const uint16_t in_df = pkt::load16(inner.data() + ipv4::kFragOff) & 0x4000;
  const size_t internal_mtu = ctx.ports[ctx.internal_port].mtu;
  const pkt::ParseResult r = pkt::parseFrame(out);
  require(r.status == ParseStatus::kOk && r.frame.l3 == L3::kIpv4, "tunnel: the output frame does not parse");
  checkParsed(out, r);
  const ParsedFrame& q = r.frame;
  require(refChecksum(out.subspan(q.l3_offset, q.ip_header_len)) == 0, "tunnel: outer IPv4 checksum does not verify");
  require(macAt(out, 6) == ctx.ports[a.out_port].mac, "tunnel: source MAC is not the out port's");
  if (a.prepended == 0) {
    // frag-needed, back out of the port it came in on.
    require(a.out_port == in_port && a.length <= in.size(), "frag-needed: wrong port, or longer than the input");
    require(in_df != 0 && p.ip_total_len + pkt::kIpipOverhead > internal_mtu,
            "frag-needed: sent for a packet that fits, or has no DF");
    require(q.proto == pkt::kProtoIcmp && q.icmp_type == 3 && q.icmp_code == 4 && q.src_ip == p.dst_ip &&
                q.dst_ip == p.src_ip && isAnyVip(q.src_ip) && macAt(out, 0) == macAt(in, 6),
            "frag-needed: not a type 3 code 4 from the VIP back to the sender");
    require(pkt::load16(out.data() + q.l4_offset + 6) == internal_mtu - pkt::kIpipOverhead,
            "frag-needed: next-hop MTU is not the internal MTU - 20");
    const size_t quote = std::min<size_t>(p.ip_header_len + 8u, p.ip_total_len);
    require(q.l4_len == 8 + quote && sameBytes(out.subspan(q.l4_offset + 8, quote), inner.first(quote)),
            "frag-needed: does not quote the IP header and 8 bytes of the packet");
    require(refChecksum(out.subspan(q.l4_offset, q.l4_len)) == 0, "frag-needed: ICMP checksum does not verify");
    return;
  }
  require(a.prepended == pkt::kIpipOverhead && a.out_port == ctx.internal_port,
          "tunnel: encapsulation must prepend 20 bytes and leave by the internal port");
  require(out.size() == pkt::kEthHeaderLen + pkt::kIpipOverhead + p.ip_total_len &&
              p.ip_total_len + pkt::kIpipOverhead <= internal_mtu,
          "tunnel: wrong length, or larger than the internal MTU");
  require(q.proto == pkt::kProtoIpip && q.ttl == 64 && q.ip_header_len == 20 && q.ip_total_len == out.size() - 14,
          "tunnel: outer header is not IPv4/IPIP, TTL 64, 20 bytes");
  require((pkt::load16(out.data() + 14 + ipv4::kFragOff)) == in_df, "tunnel: outer DF not copied (or an offset set)");
  require(w.snap->tunnel.isSource(q.src_ip) && isAnyNode(q.dst_ip),
          "tunnel: outer source outside dataplane.tunnel.source, or destination not a node");
  require(sameBytes(out.subspan(34), inner), "tunnel: the inner packet changed");
  if (p.first_fragment) {
    const fwd::ServicePort* sp = w.snap->find(p.dst_ip, p.dst_port, p.proto);
    const bool known = ctx.flows.contains(lb::FlowKey{.src_ip = p.src_ip, .dst_ip = p.dst_ip, .src_port = p.src_port,
                                                      .dst_port = p.dst_port, .proto = p.proto});
    require(known || (sp != nullptr && sp->mode == fwd::ForwardingMode::kTunnel && sp->allowsSource(p.src_ip)),
            "tunnel: a new flow to a port that is not in tunnel mode, or from a denied source");
  }
  const uint32_t hop = ctx.ports[a.out_port].nextHop(q.dst_ip);
  const pkt::Mac dst_mac = macAt(out, 0);
  require(harness().topo.static_macs.contains({hop, dst_mac}) || w.announced.contains({a.out_port, hop, dst_mac}),
          "tunnel: sent to a next-hop MAC never announced on the out port");
}

// IPv6 tunnel mode (Action::length != 0): an IPv6-in-IPv6 frame to a node, the input's
// IPv6 packet unchanged inside; or an ICMPv6 Packet Too Big to the client in its place.
void checkReshaped6(const World& w, uint8_t in_port, std::span<const std::byte> in, const ParsedFrame& p,
                    std::span<const std::byte> out, Action a) {
  const WorkerContext& ctx = w.shadow;
  require((p.proto == pkt::kProtoTcp || p.proto == pkt::kProtoUdp) && !p.has_vlan,
          "tunnel6: only TCP/UDP over IPv6 is encapsulated or answered with Packet Too Big");
  require(in_port == ctx.external_port, "tunnel6: only client frames are reshaped");
  require(p.l3_offset == pkt::kEthHeaderLen && in.size() >= pkt::kEthHeaderLen + p.ip_total_len,
          "tunnel6: input layout");
  const std::span<const std::byte> inner = in.subspan(pkt::kEthHeaderLen, p.ip_total_len);
  const pkt::Ip6 in_src = pkt::loadIp6(inner.data() + pkt::ipv6::kSrc);
  const pkt::Ip6 in_dst = pkt::loadIp6(inner.data() + pkt::ipv6::kDst);
  const size_t internal_mtu = ctx.ports[ctx.internal_port].mtu;
  require(out.size() >= pkt::kEthHeaderLen + 40 && pkt::load16(out.data() + 12) == pkt::kEtherTypeIpv6,
          "tunnel6: the output is not an IPv6 frame");
  require(macAt(out, 6) == ctx.ports[a.out_port].mac, "tunnel6: source MAC is not the out port's");
  const std::byte* oh = out.data() + pkt::kEthHeaderLen;
  const pkt::Ip6 out_src = pkt::loadIp6(oh + pkt::ipv6::kSrc);
  const pkt::Ip6 out_dst = pkt::loadIp6(oh + pkt::ipv6::kDst);
  const uint8_t next = std::to_integer<uint8_t>(oh[pkt::ipv6::kNextHeader]);
  const size_t payload = pkt::load16(oh + pkt::ipv6::kPayloadLen);
  require(out.size() == pkt::kEthHeaderLen + 40 + payload, "tunnel6: payload length does not match the frame");
  if (a.prepended == 0) {
    // Packet Too Big, back out of the port it came in on, within 1280 bytes.
    require(a.out_port == in_port && a.length <= in.size() && payload + 40 <= 1280,
            "packet-too-big: wrong port, longer than the input or than 1280 bytes");
    require(p.ip_total_len + 40 > internal_mtu, "packet-too-big: sent for a packet that fits");
    require(next == pkt::kProtoIcmp6 && std::to_integer<uint8_t>(oh[40]) == pkt::icmp6::kPacketTooBig &&
                std::to_integer<uint8_t>(oh[41]) == 0 && out_src == in_dst && out_dst == in_src &&
                isAnyVip6(out_src) && macAt(out, 0) == macAt(in, 6),
            "packet-too-big: not a type 2 code 0 from the VIP back to the sender");
    require(pkt::load32(oh + 44) == internal_mtu - 40, "packet-too-big: MTU is not the internal MTU - 40");
    const size_t quote = payload - 8;
    require(quote == std::min<size_t>(p.ip_total_len, 1232) && sameBytes(out.subspan(14 + 48, quote), inner.first(quote)),
            "packet-too-big: does not quote as much of the packet as fits in 1280 bytes");
    require(refChecksum(out.subspan(14 + 40, payload), pseudoHeader6(out_src, out_dst, pkt::kProtoIcmp6, payload)) == 0,
            "packet-too-big: ICMPv6 checksum does not verify");
    return;
  }
  require(a.prepended == 40 && a.out_port == ctx.internal_port,
          "tunnel6: encapsulation must prepend 40 bytes and leave by the internal port");
  require(out.size() == pkt::kEthHeaderLen + 40 + p.ip_total_len && p.ip_total_len + 40 <= internal_mtu,
          "tunnel6: wrong length, or larger than the internal MTU");
  const uint32_t word = pkt::load32(oh);
  require(next == 41 && std::to_integer<uint8_t>(oh[pkt::ipv6::kHopLimit]) == 64 && (word >> 28) == 6 &&
              ((word >> 20) & 0xff) == ((pkt::load32(inner.data()) >> 20) & 0xff) && (word & 0xfffff) != 0,
          "tunnel6: outer header is not IPv6/41, hop limit 64, traffic class copied, a flow label");
  require(w.snap->tunnel.isSource6(out_src) && isAnyNode6(out_dst),
          "tunnel6: outer source outside dataplane.tunnel.source6, or destination not a node");
  require(sameBytes(out.subspan(54), inner), "tunnel6: the inner packet changed");
  if (p.first_fragment) {
    const fwd::ServicePort6* sp = w.snap->find6(in_dst, p.dst_port, p.proto);
    const bool known = ctx.flows6.contains(lb::FlowKey6{.src_ip = in_src, .dst_ip = in_dst, .src_port = p.src_port,
                                                        .dst_port = p.dst_port, .proto = p.proto});
    require(known || (sp != nullptr && sp->mode == fwd::ForwardingMode::kTunnel && sp->allowsSource(in_src)),
            "tunnel6: a new flow to a port that is not in tunnel mode, or from a denied source");
  }
  const pkt::Ip6 hop = ctx.ports[a.out_port].nextHop6(out_dst);
  const pkt::Mac dst_mac = macAt(out, 0);
  require(harness().topo.static_macs6.contains({hop, dst_mac}) || w.announced6.contains({a.out_port, hop, dst_mac}),
          "tunnel6: sent to a next-hop MAC never announced on the out port");
}

void checkVerdict(const World& w, uint8_t in_port, std::span<const std::byte> in,
                  std::span<const std::byte> out, Action a, bool had_flow) {
  const pkt::ParseResult r = pkt::parseFrame(in);
  checkParsed(in, r);
  switch (a.kind) {
    case Action::Kind::kDrop:
      require(sameBytes(in, out), "drop: the frame was modified");
      return;
    case Action::Kind::kConsumed:
      require(r.status == ParseStatus::kOk &&
                  ((r.frame.l3 == L3::kArp && r.frame.arp_op == arp::kReply) ||
                   (r.frame.l3 == L3::kIpv6 && r.frame.proto == pkt::kProtoIcmp6 &&
                    r.frame.icmp_type == pkt::icmp6::kNeighborAdvertisement)),
              "consumed: only ARP replies and Neighbor Advertisements are consumed");
      require(sameBytes(in, out), "consumed: the frame was modified");
      return;
    case Action::Kind::kForward:
      require(r.status == ParseStatus::kOk, "forward: the input frame did not parse");
      if (a.length != 0 && r.frame.l3 == L3::kIpv6) {
        checkReshaped6(w, in_port, in, r.frame, out, a);
      } else if (a.length != 0) {
        checkReshaped(w, in_port, in, r.frame, out, a);
      } else {
        require(a.prepended == 0, "forward: prepended without a length");
        checkForward(w, in_port, in, r.frame, out, a.out_port, had_flow);
      }
      return;
    case Action::Kind::kToKernel: {
      // Exception path (fwd/exception.h): untouched, to the kernel of the port it came
      // in on, for that port's own address; never a flow's, a VIP's or a full-NAT reply.
      require(sameBytes(in, out), "to kernel: the frame was modified");
      require(a.out_port == in_port, "to kernel: not the kernel interface of the port it arrived on");
      require(r.status == ParseStatus::kOk && !had_flow, "to kernel: unparsed, or a frame of a flow");
      const fwd::PortInfo& port = w.primary.ports[in_port];
      if (r.frame.l3 == L3::kArp) {
        require(r.frame.arp_op == arp::kReply && r.frame.arp_tpa == port.address,
                "to kernel: an ARP frame that is not a reply to the port's address");
        return;
      }
      require(r.frame.l3 == L3::kIpv4 && r.frame.dst_ip == port.address && !isAnyVip(r.frame.dst_ip),
              "to kernel: not addressed to the port's own address");
      require(!(r.frame.proto == pkt::kProtoIcmp && r.frame.icmp_type == icmp::kEchoRequest && !r.frame.is_fragment),
              "to kernel: an echo request (the worker answers those)");
      const bool l4 = (r.frame.proto == pkt::kProtoTcp || r.frame.proto == pkt::kProtoUdp) && r.frame.first_fragment;
      require(!(l4 && isAnySnatAddress(r.frame.dst_ip) && r.frame.dst_port >= lb::SnatAllocator::kPortMin &&
                r.frame.dst_port <= kSnatPortMax),
              "to kernel: a full-NAT reply (SNAT address, port in the SNAT range)");
      return;
    }
    case Action::Kind::kRedirect:
    case Action::Kind::kShare:
    case Action::Kind::kShareToKernel:
      break;  // several workers only
  }
  fail("verdict is not drop, forward or consumed");
}

NG_FUZZ_UNTRACED uint64_t dropTotal(const WorkerContext& ctx) {
  uint64_t n = 0;
  for (const fwd::Counter& c : ctx.counters.drops) n += c.get();
  return n;
}

// Both workers saw the same frames at the same times: every counter and table must agree.
NG_FUZZ_UNTRACED void checkWorkers(const World& w) {
  const WorkerContext& a = w.primary;
  const WorkerContext& b = w.shadow;
  current = Current{};
  for (const WorkerContext* ctx : {&a, &b}) {
    require(ctx->flows.size() <= ctx->flows.capacity(), "flow table holds more flows than its capacity");
    require(ctx->arp_queue_len <= ctx->arp_queue.size(), "ARP queue longer than its array");
  }
  for (size_t r = 0; r < fwd::kDropReasonCount; ++r) {
    require(a.counters.drops[r].get() == b.counters.drops[r].get(), "burst vs frame: drop reasons differ");
  }
  const auto& ca = a.counters;
  const auto& cb = b.counters;
  require(ca.new_flows.get() == cb.new_flows.get() && ca.to_nodes.get() == cb.to_nodes.get() &&
              ca.to_clients.get() == cb.to_clients.get() && ca.arp_replies.get() == cb.arp_replies.get() &&
              ca.icmp_echo_replies.get() == cb.icmp_echo_replies.get() && ca.expired_flows.get() == cb.expired_flows.get() &&
              ca.fragments_forwarded.get() == cb.fragments_forwarded.get() &&
              ca.half_open_evictions.get() == cb.half_open_evictions.get() &&
              ca.nd_replies.get() == cb.nd_replies.get() && ca.icmp6_echo_replies.get() == cb.icmp6_echo_replies.get() &&
              ca.tunneled.get() == cb.tunneled.get() && ca.tunnel_stateless.get() == cb.tunnel_stateless.get() &&
              ca.frag_needed_sent.get() == cb.frag_needed_sent.get() && ca.affinity_hits.get() == cb.affinity_hits.get(),
          "burst vs frame: counters differ");
  require(a.flows6.size() == b.flows6.size() && a.flows6.halfOpen() == b.flows6.halfOpen() &&
              a.fragments6.size() == b.fragments6.size() && a.ns_queue_len == b.ns_queue_len,
          "burst vs frame: IPv6 flow table, fragment table or NS queue differ");
  for (const WorkerContext* ctx : {&a, &b}) {
    require(ctx->flows6.size() <= ctx->flows6.capacity() && ctx->flows6.halfOpen() <= ctx->flows6.size(),
            "IPv6 flow table above its capacity, or more half-open flows than flows");
    require(ctx->ns_queue_len <= ctx->ns_queue.size(), "NS queue longer than its array");
  }
  require(a.fragments.size() == b.fragments.size() && a.flows.halfOpen() == b.flows.halfOpen(),
          "burst vs frame: fragment table size or half-open flows differ");
  for (const WorkerContext* ctx : {&a, &b}) {
    require(ctx->flows.halfOpen() <= ctx->flows.size(), "more half-open flows than flows");
    require(ctx->fragments.size() <= ctx->fragments.capacity(), "fragment table above its capacity");
  }
  require(a.flows.size() == b.flows.size() && a.arp_queue_len == b.arp_queue_len,
          "burst vs frame: flow table size or ARP queue differ");
  require(dropTotal(b) == w.drops, "a drop verdict without exactly one drop reason (or a reason without a drop)");
  require(cb.to_nodes.get() + cb.to_clients.get() + cb.arp_replies.get() + cb.icmp_echo_replies.get() +
                  cb.nd_replies.get() + cb.icmp6_echo_replies.get() + cb.frag_needed_sent.get() ==
              w.forwards,
          "forwards do not match to_nodes + to_clients + arp_replies + icmp_echo_replies + nd_replies + "
          "icmp6_echo_replies + frag_needed_sent");
  require(cb.tunneled.get() <= cb.to_nodes.get(), "tunneled frames not counted in to_nodes");
  require(w.drops + w.forwards + w.consumed + w.to_kernel == w.frames,
          "drops + forwards + consumed + to kernel != frames processed");
}

// --- Running a program ------------------------------------------------------------------

struct Item {
  Buf in;  // as offered, never handed to the processor
  Buf primary;
  Buf shadow;
};

Current currentOf(const Buf& in, const Buf& out, uint8_t port, Action a) {
  return Current{.in = in.span(), .out = out.sent(a), .port = port, .verdict = static_cast<int>(a.kind),
                 .out_port = a.kind == Action::Kind::kForward ? a.out_port : -1};
}

// Whether `ctx`'s flow table holds the key of frame `f` (a TCP/UDP IPv4 frame).
bool hadFlow(const WorkerContext& ctx, std::span<const std::byte> f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  if (r.status == ParseStatus::kOk && r.frame.l3 == L3::kIpv6 && r.frame.first_fragment &&
      (r.frame.proto == pkt::kProtoTcp || r.frame.proto == pkt::kProtoUdp)) {
    return ctx.flows6.contains(lb::FlowKey6{.src_ip = pkt::srcIp6(f, r.frame), .dst_ip = pkt::dstIp6(f, r.frame),
                                            .src_port = r.frame.src_port, .dst_port = r.frame.dst_port,
                                            .proto = r.frame.proto});
  }
  if (r.status != ParseStatus::kOk || r.frame.l3 != L3::kIpv4 || !r.frame.first_fragment ||
      (r.frame.proto != pkt::kProtoTcp && r.frame.proto != pkt::kProtoUdp)) {
    return false;
  }
  const ParsedFrame& p = r.frame;
  return ctx.flows.contains(lb::FlowKey{.src_ip = p.src_ip, .dst_ip = p.dst_ip, .src_port = p.src_port,
                                        .dst_port = p.dst_port, .proto = p.proto});
}

// Records the link-layer address an NS (source option) or NA (target option) on `port`
// announces, whatever the verdict.
NG_FUZZ_UNTRACED void noteNdAnnouncement(World& w, uint8_t port, std::span<const std::byte> f) {
  const pkt::ParseResult r = pkt::parseFrame(f);
  if (r.status != ParseStatus::kOk || r.frame.l3 != L3::kIpv6 || r.frame.proto != pkt::kProtoIcmp6 ||
      !r.frame.first_fragment || r.frame.l4_len < pkt::icmp6::kNdMinLen) {
    return;
  }
  const bool ns = r.frame.icmp_type == pkt::icmp6::kNeighborSolicitation;
  if (!ns && r.frame.icmp_type != pkt::icmp6::kNeighborAdvertisement) return;
  const std::byte* m = f.data() + r.frame.l4_offset;
  const pkt::Ip6 who = ns ? pkt::srcIp6(f, r.frame) : pkt::loadIp6(m + pkt::icmp6::kNdTarget);
  for (size_t off = pkt::icmp6::kNdMinLen; off + 8 <= r.frame.l4_len;) {
    const size_t len = std::to_integer<size_t>(m[off + 1]) * 8;
    if (len == 0) return;
    if (std::to_integer<uint8_t>(m[off]) == (ns ? pkt::icmp6::kOptSourceLinkAddr : pkt::icmp6::kOptTargetLinkAddr)) {
      w.announced6.insert({port, who, pkt::loadMac(m + off + 2)});
    }
    off += len;
  }
}

void runUnit(World& w, std::vector<Item>& items, uint8_t port, bool burst) {
  if (items.empty()) return;
  std::array<Action, fwd::kMaxBurst> shadow_actions;
  for (size_t i = 0; i < items.size(); ++i) {
    if (const pkt::ParseResult r = pkt::parseFrame(items[i].in.span());
        r.status == ParseStatus::kOk && r.frame.l3 == L3::kArp && !r.frame.has_vlan) {
      w.announced.insert({port, r.frame.arp_spa, r.frame.arp_sha});
    }
    noteNdAnnouncement(w, port, items[i].in.span());
    const uint64_t before = dropTotal(w.shadow);
    const bool had_flow = hadFlow(w.shadow, items[i].in.span());
    const Action a = fwd::processFrame(w.shadow, *w.snap, port, items[i].shadow.span(), w.now, kHeadroom);
    const bool dropped = a.kind == Action::Kind::kDrop;
    ++w.frames;
    w.drops += dropped ? 1 : 0;
    w.forwards += a.kind == Action::Kind::kForward ? 1 : 0;
    w.consumed += a.kind == Action::Kind::kConsumed ? 1 : 0;
    w.to_kernel += a.kind == Action::Kind::kToKernel ? 1 : 0;
    current = currentOf(items[i].in, items[i].shadow, port, a);
    require(dropTotal(w.shadow) == before + (dropped ? 1 : 0),
            "exactly one drop reason per dropped frame, none for a handled one");
    checkVerdict(w, port, items[i].in.span(), items[i].shadow.sent(a), a, had_flow);
    shadow_actions[i] = a;
  }

  std::array<Action, fwd::kMaxBurst> actions;
  const uint64_t before = dropTotal(w.primary);
  if (burst) {
    std::array<std::span<std::byte>, fwd::kMaxBurst> spans;
    for (size_t i = 0; i < items.size(); ++i) spans[i] = items[i].primary.span();
    fwd::processBurst(w.primary, *w.snap, port, std::span(spans).first(items.size()),
                      std::span(actions).first(items.size()), w.now, kHeadroom);
  } else {
    for (size_t i = 0; i < items.size(); ++i) {
      actions[i] = fwd::processFrame(w.primary, *w.snap, port, items[i].primary.span(), w.now, kHeadroom);
    }
  }
  uint64_t primary_drops = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const Action& a = actions[i];
    const Action& s = shadow_actions[i];
    current = currentOf(items[i].in, items[i].primary, port, a);
    primary_drops += a.kind == Action::Kind::kDrop ? 1 : 0;
    require(a.kind == s.kind && (a.kind != Action::Kind::kForward || a.out_port == s.out_port) &&
                a.length == s.length && a.prepended == s.prepended,
            "burst vs frame: verdicts differ");
    require(sameBytes(items[i].primary.sent(a), items[i].shadow.sent(s)), "burst vs frame: output bytes differ");
  }
  require(dropTotal(w.primary) == before + primary_drops, "burst: drop reasons counted != drop verdicts");
  checkWorkers(w);
}

void slowTick(World& w, uint32_t budget) {
  std::array<fwd::ArpRequest, 32> a{};
  std::array<fwd::ArpRequest, 32> b{};
  const size_t na = fwd::slowTick(w.primary, *w.snap, w.now, budget, a);
  const size_t nb = fwd::slowTick(w.shadow, *w.snap, w.now, budget, b);
  current = Current{};
  require(na <= a.size() && na == nb, "slowTick: request counts differ or overflow");
  for (size_t i = 0; i < na; ++i) {
    require(a[i].port == b[i].port && a[i].target_ip == b[i].target_ip, "slowTick: requests differ");
    const fwd::PortInfo* port = a[i].port < w.shadow.ports.size() ? &w.shadow.ports[a[i].port] : nullptr;
    require(port != nullptr && a[i].target_ip != 0 && port->onLink(a[i].target_ip),
            "slowTick: ARP request for an unusable port or an off-link target");
    std::array<std::byte, pkt::kMinFrameLen> frame{};
    require(fwd::writeArpRequest(*port, a[i].target_ip, frame) == frame.size(), "writeArpRequest: wrong length");
    const pkt::ParseResult r = pkt::parseFrame(frame);
    require(r.status == ParseStatus::kOk && r.frame.l3 == L3::kArp && r.frame.arp_op == arp::kRequest &&
                r.frame.arp_spa == port->address && r.frame.arp_tpa == a[i].target_ip,
            "writeArpRequest: not a request from the port's address for the target");
  }
  require(w.primary.neighbors.size() == w.shadow.neighbors.size(), "burst vs frame: neighbour tables differ");
  // IPv6: the same for Neighbor Solicitations.
  std::array<fwd::NsRequest, 32> a6{};
  std::array<fwd::NsRequest, 32> b6{};
  const size_t na6 = fwd::slowTickNd(w.primary, *w.snap, w.now, a6);
  const size_t nb6 = fwd::slowTickNd(w.shadow, *w.snap, w.now, b6);
  require(na6 <= a6.size() && na6 == nb6, "slowTickNd: request counts differ or overflow");
  for (size_t i = 0; i < na6; ++i) {
    require(a6[i].port == b6[i].port && a6[i].target_ip == b6[i].target_ip, "slowTickNd: requests differ");
    const fwd::PortInfo* port = a6[i].port < w.shadow.ports.size() ? &w.shadow.ports[a6[i].port] : nullptr;
    require(port != nullptr && !a6[i].target_ip.isZero() && port->onLink6(a6[i].target_ip),
            "slowTickNd: NS for an unusable port or an off-link target");
    std::array<std::byte, pkt::kNsFrameLen> frame{};
    require(fwd::writeNsRequest(*port, a6[i].target_ip, frame) == frame.size(), "writeNsRequest: wrong length");
    const pkt::ParseResult r = pkt::parseFrame(frame);
    require(r.status == ParseStatus::kOk && r.frame.l3 == L3::kIpv6 && r.frame.icmp_type == pkt::icmp6::kNeighborSolicitation &&
                l4ChecksumOk6(frame, r.frame) == true && port->isOwn6(pkt::srcIp6(frame, r.frame)),
            "writeNsRequest: not a valid NS from one of the port's addresses");
  }
  require(w.primary.neighbors6.size() == w.shadow.neighbors6.size(), "burst vs frame: IPv6 neighbour tables differ");
  checkWorkers(w);
}

struct Record {
  uint8_t ctl;
  uint8_t dt;
  std::span<const std::byte> frame;
};

// Decodes one program at `data` (consumed up to `*used`), runs it, and appends its
// normalised form to the history.
void runProgram(const uint8_t* data, size_t size, bool first_of_input, size_t* used) {
  Harness& h = harness();
  size_t at = 0;
  const uint8_t head = data[at++];
  std::vector<Record> records;
  for (unsigned n = (head & 7u) + 1; n > 0 && size - at >= 4; --n) {
    const uint8_t ctl = data[at];
    const uint8_t dt = data[at + 1];
    const size_t len = std::min<size_t>(size_t{data[at + 2]} << 8 | data[at + 3], size - at - 4);
    records.push_back({.ctl = ctl, .dt = dt, .frame = std::as_bytes(std::span(data + at + 4, len))});
    at += 4 + len;
  }
  *used = at;
  // Only the last program of an input can run out of bytes; with no record left it does
  // nothing (not even its reset), so the history never holds an empty program.
  if (records.empty()) return;

  if ((head & kHeadResetBit) && first_of_input) resetWorld();
  World& w = *h.world;
  // Normalised: the record count actually decoded, exact lengths, the reset bit on the
  // first program after a reset.
  uint8_t normal_head = static_cast<uint8_t>((head & ~7u) | (records.size() - 1));
  if (h.history.empty()) normal_head |= kHeadResetBit;
  h.history.push_back(normal_head);
  for (const Record& r : records) {
    h.history.insert(h.history.end(), {r.ctl, r.dt, static_cast<uint8_t>(r.frame.size() >> 8),
                                       static_cast<uint8_t>(r.frame.size())});
    const auto* bytes = reinterpret_cast<const uint8_t*>(r.frame.data());
    h.history.insert(h.history.end(), bytes, bytes + r.frame.size());
  }

  if (const unsigned variant = (head >> 4) & 3u; variant != 0) {
    w.snap = h.topo.variants[variant - 1].get();
    fwd::onSnapshot(w.primary, *w.snap, w.now);
    fwd::onSnapshot(w.shadow, *w.snap, w.now);
  }
  const uint32_t budget = kBudgets[head >> 6];

  std::vector<Item> pending;
  uint8_t pending_port = 0;
  for (const Record& r : records) {
    const uint8_t port = r.ctl & kCtlPort;
    const bool burst = (r.ctl & kCtlBurst) != 0;
    if (!burst || (r.ctl & kCtlTick) || port != pending_port || pending.size() == fwd::kMaxBurst) {
      runUnit(w, pending, pending_port, true);
      pending.clear();
    }
    w.now += dtMs(r.dt);
    if (r.ctl & kCtlTick) slowTick(w, budget);
    const uint32_t repeat = kRepeats[(r.ctl >> 3) & 7u];
    for (uint32_t i = 0; i < repeat; ++i) {
      Item item{.in = copyOf(r.frame)};
      varyFlowPort(item.in.span(), port, i);
      if (r.ctl & kCtlFixIp) fixIpChecksum(item.in.span());
      if (r.ctl & kCtlFixL4) fixL4Checksum(item.in.span());
      item.primary = copyOf(item.in.span());
      item.shadow = copyOf(item.in.span());
      if (!burst) {
        std::vector<Item> one;
        one.push_back(std::move(item));
        runUnit(w, one, port, false);
        continue;
      }
      if (pending.size() == fwd::kMaxBurst) {
        runUnit(w, pending, pending_port, true);
        pending.clear();
      }
      pending_port = port;
      pending.push_back(std::move(item));
    }
  }
  runUnit(w, pending, pending_port, true);
}

}  // namespace
}  // namespace ng::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // No transparent huge pages in this process: lb::HugeArray asks for them, and a world
  // reset would then zero eight fresh 2 MiB pages (most of the run time) where a 256-flow
  // table touches a few 4 KiB ones. Best effort.
  (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  ng::fuzz::Harness& h = ng::fuzz::harness();
  if (const char* every = std::getenv("NG_FUZZ_RESET_EVERY")) {
    h.reset_every = std::max(1u, static_cast<uint32_t>(std::strtoul(every, nullptr, 10)));
  }
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg = (*argv)[i];
    constexpr std::string_view kPrefix = "-artifact_prefix=";
    if (arg.starts_with(kPrefix)) h.artifact_prefix = arg.substr(kPrefix.size());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ng::fuzz::Harness& h = ng::fuzz::harness();
  if (!h.world || h.world->inputs >= h.reset_every) ng::fuzz::resetWorld();
  ++h.world->inputs;
  size_t at = 0;
  while (at < size) {
    size_t used = 0;
    ng::fuzz::runProgram(data + at, size - at, at == 0, &used);
    at += used;
  }
  return 0;
}
