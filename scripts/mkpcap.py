#!/usr/bin/env python3
"""Write the data-plane benchmark's input: a classic pcap of TCP client -> VIP:port frames.

Used by scripts/bench-dataplane.sh, which replays the file forever with DPDK's
net_pcap (`rx_pcap=FILE,infinite_rx=1`) into both dpdk-testpmd and nodegate.

Layout of the file (--flows F, --packets-per-flow P):
  * F SYN segments, one per flow (flow i: source 10.1.a.b, source port distinct);
  * then (P - 1) rounds of one ACK segment per flow, round-robin across flows.
On the first pass through the file every flow is created by its SYN; when net_pcap loops
the file, every frame (SYNs included) hits an established flow, so the steady state
measures the established-flow fast path with F live flows.

--worker W --workers N keeps only flows that NodeGate worker W of N owns when the device
has no RSS (the by-port layout of dataplane/lb/reply_steering.h: owner = the high bits of
the flow-table hash of the client key times N). One file per worker, each read by one RX
queue of net_pcap, gives every worker its own flows, as a NIC's RSS would: no frame needs
a hop between workers (the benchmark checks the `redirected` counter stays 0). The hash
(lb::hashFlowIndex) is mirrored from dataplane/lb/hash.h (values pinned there by
hash_test and checked here by --self-test).

Every frame is 60 bytes on the wire without FCS (Ethernet + IPv4 + TCP, no options, zero
padding), i.e. a 64-byte frame with FCS. IPv4 and TCP checksums are correct, TTL is 64.
Written with `struct` only, no third-party packages.
"""

import argparse
import ipaddress
import struct
import sys

ETH_P_IP = 0x0800
IPPROTO_TCP = 6
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
FRAME_LEN = 60  # minimum Ethernet frame without FCS
PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
LINKTYPE_ETHERNET = 1

# Source addresses 10.1.x.y with x, y in 1..254, so no address ends in .0 or .255
# (nothing that a martian filter could reasonably call a network or broadcast address).
OCTET_VALUES = 254
MAX_FLOWS = OCTET_VALUES * OCTET_VALUES
SRC_PORT_BASE = 10000
SRC_PORT_SPAN = 50000  # source ports 10000..59999


MASK64 = (1 << 64) - 1
K_PI = 0x243F6A8885A308D3
K_PHI = 0x9E3779B97F4A7C15
FLOW_INDEX_SEED = 0x666C6F772D696478  # lb::FlowTable::kIndexSeed ("flow-idx")


def hash_flow_index(src_ip: int, dst_ip: int, sport: int, dport: int, proto: int, seed: int) -> int:
    """lb::hashFlowIndex (dataplane/lb/hash.h) of an IPv4 key, host-order fields."""
    def mum(x: int, k: int) -> int:
        product = x * k
        return (product & MASK64) ^ (product >> 64)

    a = src_ip | dst_ip << 32
    b = sport | dport << 16 | proto << 32
    return mum(a ^ seed, K_PHI) ^ mum(b ^ seed, K_PI)


def client_owner(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, workers: int) -> int:
    """lb::ReplySteering::clientOwner(FlowTable::hashOf(client key)) in the by-port layout."""
    h32 = hash_flow_index(int.from_bytes(src_ip, "big"), int.from_bytes(dst_ip, "big"), sport, dport,
                          IPPROTO_TCP, FLOW_INDEX_SEED) & 0xFFFFFFFF
    return (h32 * workers) >> 32


def self_test() -> None:
    """Exits with a message unless the mirror gives hash_test's pinned values."""
    # hash_test's IndexHashPinnedValues: 10.0.0.1:12345 -> 192.168.0.1:80 TCP, seeds 0 and 42.
    for seed, want in ((0, 0x9FC7F84D39B0295A), (42, 0x0967C1B0712D337B)):
        got = hash_flow_index(0x0A000001, 0xC0A80001, 12345, 80, 6, seed)
        if got != want:
            sys.exit(f"mkpcap: flow index hash mirror is out of date with dataplane/lb/hash.h: "
                     f"seed {seed} gave {got:#018x}, hash_test pins {want:#018x}")


def checksum16(data: bytes) -> int:
    """RFC 1071 Internet checksum (one's complement of the one's complement sum)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise argparse.ArgumentTypeError(f"bad MAC address {text!r}")
    try:
        value = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad MAC address {text!r}") from None
    return value


def parse_ipv4(text: str) -> bytes:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def flow_source(i: int) -> tuple[bytes, int]:
    """Source address and port of flow i: 10.1.(1 + i / 254).(1 + i % 254), port distinct."""
    addr = bytes((10, 1, 1 + i // OCTET_VALUES, 1 + i % OCTET_VALUES))
    port = SRC_PORT_BASE + i % SRC_PORT_SPAN
    return addr, port


def tcp_frame(*, dst_mac: bytes, src_mac: bytes, src_ip: bytes, dst_ip: bytes,
              sport: int, dport: int, seq: int, ack: int, flags: int, ip_id: int) -> bytes:
    tcp_len = 20
    ip_len = 20 + tcp_len
    ip_hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, ip_id, 0x4000,  # DF
                         64, IPPROTO_TCP, 0, src_ip, dst_ip)
    ip_hdr = ip_hdr[:10] + struct.pack("!H", checksum16(ip_hdr)) + ip_hdr[12:]

    tcp_hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (tcp_len // 4) << 4, flags,
                          64240, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src_ip, dst_ip, 0, IPPROTO_TCP, tcp_len)
    tcp_hdr = tcp_hdr[:16] + struct.pack("!H", checksum16(pseudo + tcp_hdr)) + tcp_hdr[18:]

    frame = dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip_hdr + tcp_hdr
    return frame + b"\0" * (FRAME_LEN - len(frame))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", help="pcap file to write")
    ap.add_argument("--flows", type=int, default=4096, help="distinct TCP flows (default 4096)")
    ap.add_argument("--packets-per-flow", type=int, default=8,
                    help="frames per flow: one SYN, then ACKs (default 8)")
    ap.add_argument("--vip", type=parse_ipv4, default=parse_ipv4("10.100.0.100"),
                    help="destination address (default 10.100.0.100)")
    ap.add_argument("--port", type=int, default=80, help="destination TCP port (default 80)")
    ap.add_argument("--dst-mac", type=parse_mac, default=parse_mac("02:00:00:00:00:01"),
                    help="destination MAC (default 02:00:00:00:00:01); the load balancer "
                         "port's MAC if it filters on it")
    ap.add_argument("--src-mac", type=parse_mac, default=parse_mac("02:00:00:00:01:01"),
                    help="source MAC, the client-side router (default 02:00:00:00:01:01)")
    ap.add_argument("--workers", type=int, default=1,
                    help="split flows among N NodeGate workers (by-port layout; default 1)")
    ap.add_argument("--worker", type=int, default=0,
                    help="keep only the flows worker W (0..N-1) owns; --flows counts those")
    ap.add_argument("--self-test", action="store_true",
                    help="check the mirrored flow index hash against hash_test's pinned values")
    args = ap.parse_args()

    self_test()
    if args.self_test:
        print("mkpcap: flow index hash matches dataplane/lb/hash.h's pinned values", file=sys.stderr)
        return 0
    if args.out is None:
        ap.error("the pcap file to write is required")

    if not 1 <= args.flows <= MAX_FLOWS:
        ap.error(f"--flows must be in 1..{MAX_FLOWS}")
    if not 1 <= args.workers <= 64 or not 0 <= args.worker < args.workers:
        ap.error("--workers must be in 1..64 and --worker in 0..workers-1")
    if args.packets_per_flow < 1:
        ap.error("--packets-per-flow must be at least 1")
    if not 1 <= args.port <= 65535:
        ap.error("--port must be in 1..65535")

    common = dict(dst_mac=args.dst_mac, src_mac=args.src_mac, dst_ip=args.vip, dport=args.port)
    isn = lambda i: (0x10000000 + i * 7919) & 0xFFFFFFFF  # noqa: E731 - any per-flow ISN
    server_isn = 0x20000000

    # Flow numbers i in order, skipping those another worker owns.
    chosen = []
    for i in range(MAX_FLOWS):
        if len(chosen) == args.flows:
            break
        src_ip, sport = flow_source(i)
        if args.workers == 1 or client_owner(src_ip, args.vip, sport, args.port, args.workers) == args.worker:
            chosen.append(i)
    if len(chosen) < args.flows:
        ap.error(f"only {len(chosen)} of the {MAX_FLOWS} possible flows belong to worker {args.worker}")

    frames = []
    for i in chosen:
        src_ip, sport = flow_source(i)
        frames.append(tcp_frame(**common, src_ip=src_ip, sport=sport, seq=isn(i), ack=0,
                                flags=TCP_SYN, ip_id=len(frames) & 0xFFFF))
    for _ in range(args.packets_per_flow - 1):
        for i in chosen:
            src_ip, sport = flow_source(i)
            frames.append(tcp_frame(**common, src_ip=src_ip, sport=sport,
                                    seq=(isn(i) + 1) & 0xFFFFFFFF, ack=server_isn + 1,
                                    flags=TCP_ACK, ip_id=len(frames) & 0xFFFF))

    with open(args.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for n, frame in enumerate(frames):
            # One microsecond apart; net_pcap ignores timestamps when replaying.
            f.write(struct.pack("<IIII", 1_700_000_000 + n // 1_000_000, n % 1_000_000,
                                len(frame), len(frame)))
            f.write(frame)
    owner = f" of worker {args.worker}/{args.workers}" if args.workers > 1 else ""
    print(f"{args.out}: {len(frames)} frames, {args.flows} flows{owner}, "
          f"{FRAME_LEN}-byte frames (64 with FCS)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
