#!/usr/bin/env bash
# End-to-end: IPv6 tunnel mode (IPv6-in-IPv6, DSR) in network namespaces.
#
# Usage: test/e2e/tunnel6_test.sh <nodegate-binary> <repo-root>
#
# Topology: scripts/netns.sh with NG_NETNS_IPV6=1 and NG_NETNS_ROUTER=1 - client
# fd00:100::2, nodes fd00:200::11..13, and a router ${P}rtr (fd00:200::fe on the node
# network, fd00:150::1 <-> client eth1 fd00:150::2) that the nodes route the client's
# /64 through. VIP6 fd00:100::101 (TCP 80, UDP 53) is in tunnel mode, outer sources
# fd00:200::100/120, both ports MTU 1500. Each node decapsulates with what the test
# brings: a raw AF_INET6 socket for next header 41 (the kernel hands it the inner IPv6
# packet) written to a TUN device, and an nft DNAT of [VIP6]:80 / :53 to the node's own
# address, the way kube-proxy handles a LoadBalancer IP with ipMode VIP. (A real node:
# an ip6tnl device in any-remote mode.)
# Checks:
#   (a) 60 HTTP requests to http://[fd00:100::101]/whoami all succeed and every node
#       serves >= 5;
#   (b) the replies bypassed the box: to_clients stays 0 while tunneled >= 60, and the
#       router forwarded at least as many packets to the client (its eth1 TX);
#   (c) a UDP datagram to [VIP6]:53 is echoed by a node via the router;
#   (d) a UDP datagram of 1500 bytes of IPv6 is answered by the box with ICMPv6 Packet
#       Too Big: the client's path MTU to the VIP becomes 1460, frag_needed_sent >= 1;
#   (e) /v1/vips shows fd00:100::101 in mode tunnel / ipMode VIP;
#   (f) it stops on SIGTERM with exit 0;
# and always tears down (router included). Needs root (exit 77 = skipped otherwise).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

export NG_NETNS_ROUTER=1
# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_tunnel6 "ngt6$$-" "$@"
export NG_NETNS_IPV6=1

readonly REQUESTS=60
readonly MIN_EACH=5
readonly TUNNEL_VIP6=fd00:100::101

# The node side's decapsulator: an AF_INET6 raw socket for next header 41 receives the
# payload after the outer header - the inner IPv6 packet - and the kernel sends no
# "unrecognized next header" while it is open; the inner packet goes to tun0.
readonly DECAP_PY='
import fcntl, os, socket, struct, sys
name = sys.argv[1]
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI))
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
raw.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
print(f"{name}: decapsulating IPv6-in-IPv6 onto tun0", file=sys.stderr, flush=True)
while True:
    packet = raw.recv(65535)
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        os.write(tun, packet)
'

# The client: a small datagram echoed, then 1452 bytes of UDP (1500 bytes of IPv6, 1540
# once encapsulated) with path MTU discovery on; prints the echo and the path MTU.
readonly PMTU6_PY='
import socket, sys, time
vip = sys.argv[1]
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU = 23, 2, 24
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
s.connect((vip, 53))
s.settimeout(2)
s.send(b"tunnel6-echo")
try:
    print("echo", s.recv(2048).decode(errors="replace"))
except OSError as e:
    print("echo-error", e)
before = s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
try:
    s.send(b"x" * 1452)
except OSError as e:
    print("send-error", e)
after = before
for _ in range(50):
    time.sleep(0.1)
    try:
        after = s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
    except OSError:
        pass
    if after != before:
        break
print("mtu", before, after)
'

e2e_up || exit 1

say "nodes: IPv6-in-IPv6 decapsulator on tun0, nft DNAT [$TUNNEL_VIP6]:80 and :53 to the node"
for i in "${!NG_NODE_NAMES[@]}"; do
  n="${NG_NODE_NAMES[$i]}"
  addr6="${NG_NODE_ADDRS6[$i]}"
  ns="${P}${n}"
  ip netns exec "$ns" /usr/bin/python3 -c "$DECAP_PY" "$n" </dev/null >>"$work/$n.decap.log" 2>&1 &
  seen_pids+=("$!")
  for ((t = 0; t < 50; t++)); do
    ip -n "$ns" link show tun0 >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! ip netns exec "$ns" sysctl -qw net.ipv6.conf.tun0.disable_ipv6=0 >>"$work/setup.log" 2>&1 ||
    ! ip -n "$ns" link set tun0 up 2>>"$work/setup.log" ||
    ! ip netns exec "$ns" nft -f - >>"$work/setup.log" 2>&1 <<EOF
table ip6 kubeproxy6 {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip6 daddr $TUNNEL_VIP6 tcp dport 80 dnat to [$addr6]:$NG_NODE_PORT
    ip6 daddr $TUNNEL_VIP6 udp dport 53 dnat to [$addr6]:$NG_UDP_NODE_PORT
  }
}
EOF
  then
    fail "node $n set-up: $(tail -n 3 "$work/setup.log") $(tail -n 3 "$work/$n.decap.log")"
    exit 1
  fi
done
pass "nodes decapsulate IPv6-in-IPv6 (tun0 up in ${NG_NODE_NAMES[*]})"

cat >"$work/nodegate.conf" <<EOF
dataplane = {
  eal = [ "--no-huge", "-m", "512", "--no-pci", "--no-shconf" ];
  workers = [ 1 ];
  ports = (
    { name = "ext"; device = "net_af_packet0,iface=ext0"; role = "external";
      address = "10.100.0.1/24"; address6 = "$NG_GATEWAY_ADDR6/64"; mtu = 1500; },
    { name = "int"; device = "net_af_packet1,iface=int0"; role = "internal";
      address = "10.200.0.1/24"; address6 = "$NG_LB_INT_ADDR6/64"; mtu = 1500; }
  );
  mode = "fullnat";
  tunnel = { source6 = "fd00:200::100/120"; icmp_rate = 100; icmp_burst = 20; };
  flows = { capacity = 65536; };
};
api = { listen = "127.0.0.1:9080"; };
health = { interval_ms = 1000; timeout_ms = 500; rise = 2; fall = 2; source_address = "$NG_LB_MGMT_ADDR"; };
state_dir = "$work/state";
nodes = (
  { name = "n1"; addresses = [ "10.200.0.11", "${NG_NODE_ADDRS6[0]}" ]; },
  { name = "n2"; addresses = [ "10.200.0.12", "${NG_NODE_ADDRS6[1]}" ]; },
  { name = "n3"; addresses = [ "10.200.0.13", "${NG_NODE_ADDRS6[2]}" ]; }
);
services = (
  { namespace = "default"; name = "dsr6"; vip = "$TUNNEL_VIP6"; mode = "tunnel";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; } ); }
);
EOF
e2e_start "$work/nodegate.conf" || exit 1

counter() {
  api /v1/stats | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$1" \
    2>/dev/null
}
link_counter() {  # link_counter NS DEV rx|tx: packets through it so far
  ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3_packets" 2>/dev/null || echo 0
}

# (a) requests through the IPv6 tunnel VIP.
router_tx_before="$(link_counter "${P}rtr" eth1 tx)"
say "(a) $REQUESTS requests to http://[$TUNNEL_VIP6]/whoami"
NG_VIP="[$TUNNEL_VIP6]" e2e_requests "$REQUESTS" "$work/requests.txt"
checkpoint
e2e_check_requests "(a)" "$work/requests.txt" "$REQUESTS" "$MIN_EACH"

# (b) the replies went through the router, not the box.
to_clients="$(counter to_clients)"
tunneled="$(counter tunneled)"
router_tx=$(($(link_counter "${P}rtr" eth1 tx) - router_tx_before))
if [[ "$to_clients" == 0 ]] && ((${tunneled:-0} >= REQUESTS && router_tx >= REQUESTS)); then
  pass "(b) replies bypassed the box: to_clients=0, tunneled=$tunneled; router forwarded $router_tx packets to the client"
else
  fail "(b) to_clients=${to_clients:-?} (want 0), tunneled=${tunneled:-?} (want >= $REQUESTS), router eth1 tx=$router_tx (want >= $REQUESTS)"
fi

# (c) + (d) UDP through the tunnel and IPv6 path-MTU discovery against the box.
say "(c)(d) UDP echo and a 1500-byte IPv6 datagram to [$TUNNEL_VIP6]:53"
frag_before="$(counter frag_needed_sent)"
step ip netns exec "$client" /usr/bin/python3 -c "$PMTU6_PY" "$TUNNEL_VIP6" >"$work/pmtu.txt" 2>&1
checkpoint
echo_line="$(grep '^echo' "$work/pmtu.txt")"
if [[ "$echo_line" =~ ^echo\ n[123]\ tunnel6-echo$ ]]; then
  pass "(c) UDP via the IPv6 tunnel answered from [$TUNNEL_VIP6]:53: '${echo_line#echo }'"
else
  fail "(c) UDP echo: $(tr '\n' ' ' <"$work/pmtu.txt")"
fi
read -r _ mtu_before mtu_after < <(grep '^mtu' "$work/pmtu.txt")
frag_after="$(counter frag_needed_sent)"
if [[ "${mtu_after:-}" == 1460 && "${mtu_before:-}" == 1500 ]] && ((${frag_after:-0} > ${frag_before:-0})); then
  pass "(d) Packet Too Big from the box: path MTU to $TUNNEL_VIP6 $mtu_before -> $mtu_after, frag_needed_sent ${frag_before} -> ${frag_after}"
else
  fail "(d) path MTU ${mtu_before:-?} -> ${mtu_after:-?} (want 1500 -> 1460), frag_needed_sent ${frag_before:-?} -> ${frag_after:-?}; $(tr '\n' ' ' <"$work/pmtu.txt")"
fi

# (e) mode in the status API.
api /v1/vips >"$work/vips.json"
if modes="$(/usr/bin/python3 - "$work/vips.json" "$TUNNEL_VIP6" <<'PY'
import json, sys
vips = {v["vip"]: v for v in json.load(open(sys.argv[1]))["vips"]}
t = vips[sys.argv[2]]
print(f"{sys.argv[2]} {t['mode']}/{t['ip_mode']}")
sys.exit(0 if (t["mode"], t["ip_mode"]) == ("tunnel", "VIP") else 1)
PY
)"; then
  pass "(e) /v1/vips: $modes"
else
  fail "(e) /v1/vips mode: ${modes:-unreadable answer}"
fi
say "drops: $(api /v1/stats | /usr/bin/python3 -c 'import json,sys; print({k: v for k, v in json.load(sys.stdin)["drops"].items() if v})' 2>/dev/null)"

# (f) clean stop.
stop_nodegate
if [[ "$ng_rc" == 0 ]]; then
  pass "(f) nodegate stopped on SIGTERM with exit 0"
else
  fail "(f) nodegate exit status $ng_rc after SIGTERM"
fi
exit 0
