// Writes the seed corpus of packet_fuzz into the directory given on the command line:
// every fixture input frame wrapped as a one-record program, every fixture as one
// multi-record program (frames that depend on what the box chose, like a node's reply to
// its SNAT port, are computed by running the fixture), and a few synthesized programs
// that reach state the fixtures do not (full table, expiry, clock wrap, snapshot
// changes, ARP resolution of a node). The program format is in packet_fuzz.cc.
//
// Usage: make_corpus DIR

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataplane/fwd/processor.h"
#include "dataplane/pkt/headers.h"
#include "dataplane/pkt/parse.h"
#include "test/dataplane/fwd/fixtures.h"
#include "test/fuzz/program_format.h"

namespace ng::fuzz {
namespace {

using test::Bytes;
using test::Fixture;
using test::kExt;
using test::kInt;
using test::Observed;
using test::PacketBuilder;
using test::Step;
using test::Topo;
namespace tcp = pkt::tcp;

constexpr uint8_t kBudgetAll = 0x80;                                                    // 256 records per tick
constexpr uint8_t seconds(unsigned s) { return static_cast<uint8_t>(127 + s); }       // 1..128 s

struct Record {
  uint8_t ctl = 0;  // port in bit 0
  uint8_t dt = 0;
  Bytes frame;
};

struct Program {
  uint8_t head = kHeadResetBit;  // bits 0-2 (record count) are filled in by encode()
  std::vector<Record> records;
};

Bytes encode(const std::vector<Program>& programs) {
  Bytes out;
  auto put = [&](unsigned v) { out.push_back(static_cast<std::byte>(v)); };
  for (const Program& p : programs) {
    if (p.records.empty() || p.records.size() > 8) {
      std::fprintf(stderr, "make_corpus: a program holds 1..8 records\n");
      std::exit(1);
    }
    put((p.head & ~7u) | (p.records.size() - 1));
    for (const Record& r : p.records) {
      put(r.ctl);
      put(r.dt);
      put(r.frame.size() >> 8);
      put(r.frame.size() & 0xff);
      out.insert(out.end(), r.frame.begin(), r.frame.end());
    }
  }
  return out;
}

// What the box chose for a forwarded client frame.
Observed observe(const Bytes& out) {
  const pkt::ParseResult r = pkt::parseFrame(out);
  if (r.frame.l3 == pkt::L3::kIpv6) {
    return Observed{.snat_port = r.frame.src_port, .node_ip6 = pkt::loadIp6(out.data() + r.frame.l3_offset + 24)};
  }
  return Observed{.node_ip = r.frame.dst_ip, .snat_port = r.frame.src_port};
}

// A worker as packet_fuzz builds one after a reset (client MAC known), for computing the
// frames that depend on the box's choices.
struct Sim {
  test::Env env = test::makeEnv();
  fwd::WorkerContext ctx{0, env.ports, 256, 0, 64, 256};
  // With the fixture's worker settings (exception path, SNAT range), as processor_test.
  explicit Sim(const Fixture& fx) {
    test::applyFixtureSettings(fx, env);
    ctx.ports = env.ports;
    test::applyFixtureSettings(fx, ctx);
    fwd::onSnapshot(ctx, *env.snapshot, 0);
    ctx.neighbors.learn(Topo::clientIp(), Topo::clientMac(), 0);
    ctx.neighbors6.learn(test::Topo6::clientIp(), Topo::clientMac(), 0);
  }
  fwd::Action run(uint8_t port, Bytes& frame) { return fwd::processFrame(ctx, *env.snapshot, port, frame, 1); }
};

// The fixture's input frames, computed in order as processor_test does.
std::vector<Record> fixtureRecords(const Fixture& fx) {
  Sim sim(fx);
  Observed seen;
  std::vector<Record> records;
  for (const Step& step : fx.steps) {
    Bytes frame = step.make_input ? step.make_input(seen) : step.input;
    records.push_back(Record{.ctl = step.in_port, .frame = frame});
    if (sim.run(step.in_port, frame).kind == fwd::Action::Kind::kForward && step.observe) seen = observe(frame);
  }
  return records;
}

Bytes clientUdp(uint16_t client_port, size_t payload = 20) {
  return PacketBuilder()
      .eth(Topo::clientMac(), Topo::extMac())
      .ipv4(Topo::clientIp(), Topo::vip())
      .udp(client_port, 53)
      .payload(payload)
      .build();
}

std::string slug(const std::string& text) {
  std::string s;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (keep) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!keep && !s.empty() && s.back() != '-') s += '-';
    if (s.size() >= 48) break;
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s;
}

class Writer {
 public:
  explicit Writer(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void write(const std::string& name, const std::vector<Program>& programs) {
    const Bytes bytes = encode(programs);
    std::ofstream f(dir_ / name, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::fprintf(stderr, "make_corpus: cannot write %s\n", (dir_ / name).c_str());
      std::exit(1);
    }
    ++count_;
  }
  [[nodiscard]] int count() const { return count_; }

 private:
  std::filesystem::path dir_;
  int count_ = 0;
};

void writeFixtures(Writer& out, const std::vector<Fixture>& fixtures, const std::string& prefix) {
  for (size_t i = 0; i < fixtures.size(); ++i) {
    const Fixture& fx = fixtures[i];
    const std::string base = prefix + std::to_string(i) + "-" + slug(fx.description);
    const std::vector<Record> records = fixtureRecords(fx);
    // Each input frame on its own, exactly as the fixture has it (bad checksums stay bad).
    for (size_t s = 0; s < records.size(); ++s) {
      out.write(base + "-step" + std::to_string(s), {Program{.records = {records[s]}}});
    }
    if (records.size() > 1) {
      out.write(base + "-all", {Program{.records = records}});
      std::vector<Record> burst = records;
      for (Record& r : burst) r.ctl |= kCtlBurst;
      out.write(base + "-burst", {Program{.records = burst}});
    }
  }
}

void writeSynthesized(Writer& out) {
  const uint8_t kFix = kCtlFixIp | kCtlFixL4;
  const uint8_t kSynAck = tcp::kSyn | tcp::kAckFlag;
  const uint8_t kAck = tcp::kAckFlag;
  const uint8_t kFinAck = tcp::kFin | tcp::kAckFlag;

  // IPv6: a whole connection through VIP6, then a DAD-free NS for the VIP and an echo.
  {
    Sim sim(Fixture{});
    Bytes syn = test::clientTcp6(40000, tcp::kSyn);
    sim.run(kExt, syn);
    const Observed o = observe(syn);
    out.write("synth-ipv6-connection",
              {Program{.records = {
                           Record{.ctl = kExt | kFix, .frame = test::clientTcp6(40000, tcp::kSyn)},
                           Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp6(o.node_ip6, o.snat_port, kSynAck)},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp6(40000, kAck)},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp6(40000, kFinAck)},
                           Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp6(o.node_ip6, o.snat_port, kFinAck)},
                       }}});
    const pkt::Ip6 group = pkt::solicitedNode(test::Topo6::vip());
    out.write("synth-ipv6-nd-and-echo",
              {Program{.records = {
                           Record{.ctl = kExt | kFix, .frame = PacketBuilder().eth(Topo::clientMac(), pkt::multicastMac(group))
                                                                 .ipv6(test::Topo6::clientIp(), group, 255)
                                                                 .ndSolicit(test::Topo6::vip(), Topo::clientMac()).build()},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = PacketBuilder().eth(Topo::clientMac(), Topo::extMac())
                                                                 .ipv6(test::Topo6::clientIp(), test::Topo6::vip())
                                                                 .icmp6Echo(pkt::icmp6::kEchoRequest, 1, 1).build()},
                       }}});
  }

  // A SYN then the node's reply, and the rest of the connection; then the closed flow
  // expires after the transitory timeout.
  {
    Sim sim(Fixture{});
    Bytes syn = test::clientTcp(40000, tcp::kSyn);
    sim.run(kExt, syn);
    const Observed o = observe(syn);
    const Program conn{.records = {
                           Record{.ctl = kExt | kFix, .frame = test::clientTcp(40000, tcp::kSyn)},
                           Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp(o.node_ip, o.snat_port, kSynAck)},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp(40000, kAck)},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp(40000, tcp::kPsh | kAck, 100)},
                           Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp(o.node_ip, o.snat_port, kAck, 1000)},
                           Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp(40000, kFinAck)},
                           Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp(o.node_ip, o.snat_port, kFinAck)},
                       }};
    out.write("synth-syn-then-reply", {Program{.records = {conn.records[0], conn.records[1]}}});
    out.write("synth-connection", {conn});
    Program burst = conn;
    for (Record& r : burst.records) r.ctl |= kCtlBurst;
    out.write("synth-connection-burst", {burst});
    const Program expire{.head = kBudgetAll,
                         .records = {Record{.ctl = kCtlTick, .dt = seconds(61), .frame = test::clientTcp(40000, kAck)}}};
    out.write("synth-connection-then-expiry", {conn, expire});
    // A node's reply flood over the SNAT ports after the SYN: one of them is the flow's.
    const Program replies{.head = 0, .records = {Record{.ctl = kInt | kFix | repeatBits(6) | kCtlBurst,
                                                        .frame = test::nodeTcp(o.node_ip, o.snat_port, kSynAck)}}};
    out.write("synth-reply-flood", {Program{.records = {conn.records[0]}}, replies});
  }

  // UDP both ways, then idle past the UDP timeout.
  {
    Sim sim(Fixture{});
    Bytes q = clientUdp(5353);
    sim.run(kExt, q);
    const Observed o = observe(q);
    const Program udp{.records = {Record{.ctl = kExt | kFix, .frame = clientUdp(5353)},
                                  Record{.ctl = kInt | kFix, .dt = 2, .frame = test::nodeUdp(o.node_ip, o.snat_port, 20)}}};
    const Program idle{.head = kBudgetAll,
                       .records = {Record{.ctl = kCtlTick, .dt = seconds(121), .frame = clientUdp(5353)}}};
    out.write("synth-udp-exchange-then-idle", {udp, idle});
  }

  // Fill the 256-flow table with one record (x256 SYNs from consecutive client ports),
  // then one more batch: table full; then time passes and the ticks expire them.
  {
    const Program fill{.records = {
                           Record{.ctl = kExt | kFix | repeatBits(7) | kCtlBurst, .frame = test::clientTcp(10000, tcp::kSyn)},
                           Record{.ctl = kExt | kFix | repeatBits(5), .dt = 1, .frame = test::clientTcp(20000, tcp::kSyn)},
                           Record{.ctl = kExt | kFix | repeatBits(4), .dt = 1, .frame = test::clientTcp(10000, kAck)},
                       }};
    const Program drain{.head = kBudgetAll,
                        .records = {Record{.ctl = kCtlTick, .dt = seconds(61), .frame = {}},
                                    Record{.ctl = kExt | kFix | repeatBits(5), .dt = 1, .frame = test::clientTcp(30000, tcp::kSyn)}}};
    out.write("synth-full-table", {fill});
    out.write("synth-full-table-then-expiry", {fill, drain});
  }

  // The clock wraps (packet_fuzz starts 600 s before 2^32 ms): an established flow lives
  // across the wrap with the 900 s timeout, ticks between the steps.
  {
    Program before{.records = {Record{.ctl = kExt | kFix, .frame = test::clientTcp(40001, tcp::kSyn)},
                               Record{.ctl = kExt | kFix, .dt = 1, .frame = test::clientTcp(40001, kAck)}}};
    Program across{.head = kBudgetAll, .records = {}};
    for (int i = 0; i < 6; ++i) {
      across.records.push_back(
          Record{.ctl = kExt | kFix | kCtlTick, .dt = seconds(128), .frame = test::clientTcp(40001, tcp::kPsh | kAck, 10)});
    }
    out.write("synth-clock-wrap", {before, across});
  }

  // Snapshot changes: a flow made under the fixture snapshot continues under variant 1
  // (its node may be gone) and variant 2 (other SNAT addresses and weights); new SYNs
  // and UDP under each.
  {
    const Program open{.records = {Record{.ctl = kExt | kFix | repeatBits(5), .frame = test::clientTcp(41000, tcp::kSyn)}}};
    const Program removed{.head = snapshotBits(1),
                          .records = {Record{.ctl = kExt | kFix | repeatBits(5), .dt = 1, .frame = test::clientTcp(41000, kAck)},
                                      Record{.ctl = kExt | kFix | repeatBits(4), .dt = 1, .frame = test::clientTcp(42000, tcp::kSyn)}}};
    const Program other{.head = snapshotBits(2),
                        .records = {Record{.ctl = kExt | kFix | repeatBits(5), .dt = 1, .frame = test::clientTcp(41000, kAck)},
                                    Record{.ctl = kExt | kFix | repeatBits(4), .dt = 1, .frame = test::clientTcp(43000, tcp::kSyn)},
                                    Record{.ctl = kExt | kFix, .dt = 1, .frame = clientUdp(5454)}}};
    out.write("synth-snapshot-changes", {open, removed, other});
  }

  // Variant 2's second VIP goes to node .14, which has no static MAC: the SYN is dropped
  // while ARP is pending, the tick sends the request, the node's answer is learned (on
  // the internal port) and the next SYN goes through.
  {
    const uint32_t vip2 = test::ip("10.100.0.101");
    const uint32_t node = test::ip("10.200.0.14");
    const test::Mac node_mac = Topo::nodeMac(node);
    auto syn = [&](uint16_t port) {
      return PacketBuilder().eth(Topo::clientMac(), Topo::extMac()).ipv4(Topo::clientIp(), vip2).tcp(port, 443, tcp::kSyn).build();
    };
    const Program resolve{.head = kHeadResetBit | snapshotBits(2),
                          .records = {Record{.ctl = kExt, .frame = syn(45000)},
                                      Record{.ctl = kInt | kCtlTick, .dt = 5,
                                             .frame = PacketBuilder()
                                                          .eth(node_mac, Topo::intMac())
                                                          .arp(pkt::arp::kReply, node_mac, node, Topo::intMac(), Topo::intIp())
                                                          .build()},
                                      Record{.ctl = kExt, .dt = 1, .frame = syn(45000)},
                                      Record{.ctl = kExt, .dt = 1,
                                             .frame = PacketBuilder()
                                                          .eth(Topo::clientMac(), Topo::extMac())
                                                          .ipv4(Topo::clientIp(), vip2)
                                                          .icmpEcho(pkt::icmp::kEchoRequest, 9, 1)
                                                          .payload(16)
                                                          .build()}}};
    out.write("synth-arp-resolves-a-node", {resolve});

    // Regression (README "Findings"): the same answer arriving on the external port must
    // not be learned, and neither may a node-side claim to be the client.
    const Program wrong_port{.head = kHeadResetBit | snapshotBits(2),
                             .records = {Record{.ctl = kExt | kCtlTick, .dt = 1, .frame = resolve.records[1].frame},
                                         Record{.ctl = kExt, .dt = 1, .frame = syn(45001)},
                                         Record{.ctl = kInt, .dt = 1,
                                                .frame = PacketBuilder()
                                                             .eth(node_mac, test::mac("ff:ff:ff:ff:ff:ff"))
                                                             .arp(pkt::arp::kRequest, node_mac, Topo::clientIp(),
                                                                  test::Mac{}, Topo::intIp())
                                                             .build()},
                                         Record{.ctl = kInt | kFix, .dt = 1, .frame = test::nodeTcp(node, 1024, kSynAck)}}};
    out.write("synth-arp-reply-on-the-wrong-port", {wrong_port});
  }
}

}  // namespace
}  // namespace ng::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(argv[1], ec);
  if (ec) {
    std::fprintf(stderr, "make_corpus: cannot create %s: %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  ng::fuzz::Writer out(argv[1]);
  ng::fuzz::writeFixtures(out, ng::test::standardFixtures(), "fixture-");
  ng::fuzz::writeFixtures(out, ng::test::ipv6Fixtures(), "fixture6-");
  ng::fuzz::writeSynthesized(out);
  std::printf("make_corpus: wrote %d seeds to %s\n", out.count(), argv[1]);
  return 0;
}
