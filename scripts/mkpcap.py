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
    ap.add_argument("out", help="pcap file to write")
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
    args = ap.parse_args()

    if not 1 <= args.flows <= MAX_FLOWS:
        ap.error(f"--flows must be in 1..{MAX_FLOWS}")
    if args.packets_per_flow < 1:
        ap.error("--packets-per-flow must be at least 1")
    if not 1 <= args.port <= 65535:
        ap.error("--port must be in 1..65535")

    common = dict(dst_mac=args.dst_mac, src_mac=args.src_mac, dst_ip=args.vip, dport=args.port)
    isn = lambda i: (0x10000000 + i * 7919) & 0xFFFFFFFF  # noqa: E731 - any per-flow ISN
    server_isn = 0x20000000

    frames = []
    for i in range(args.flows):
        src_ip, sport = flow_source(i)
        frames.append(tcp_frame(**common, src_ip=src_ip, sport=sport, seq=isn(i), ack=0,
                                flags=TCP_SYN, ip_id=len(frames) & 0xFFFF))
    for _ in range(args.packets_per_flow - 1):
        for i in range(args.flows):
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
    print(f"{args.out}: {len(frames)} frames, {args.flows} flows, "
          f"{FRAME_LEN}-byte frames (64 with FCS)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
