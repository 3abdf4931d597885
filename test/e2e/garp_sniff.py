#!/usr/bin/env python3
"""Prints one line per gratuitous ARP (sender IP == target IP) seen on IFACE for SECONDS.

Usage: garp_sniff.py IFACE SECONDS   (root; run inside the namespace that owns IFACE)
Line: garp op=OP ip=IP src=ETH_SRC dst=ETH_DST sha=SHA tha=THA len=LEN
A raw AF_PACKET socket sees every frame on the wire, whatever the kernel's ARP settings
(arp_accept) make of it, so the check does not depend on the neighbour table.
"""
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806


def main() -> int:
    iface, seconds = sys.argv[1], float(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((iface, 0))
    s.settimeout(0.2)
    end = time.time() + seconds
    while time.time() < end:
        try:
            f = s.recv(2048)
        except socket.timeout:
            continue
        if len(f) < 42:
            continue
        op = struct.unpack("!H", f[20:22])[0]
        spa, tpa = socket.inet_ntoa(f[28:32]), socket.inet_ntoa(f[38:42])
        if spa == tpa:
            print(f"garp op={op} ip={spa} src={f[6:12].hex(':')} dst={f[0:6].hex(':')} "
                  f"sha={f[22:28].hex(':')} tha={f[32:38].hex(':')} len={len(f)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
