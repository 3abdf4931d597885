#!/usr/bin/env bash
# End-to-end: tunnel mode (DSR, IPIP) next to full-NAT, in network namespaces.
#
# Usage: test/e2e/tunnel_test.sh <nodegate-binary> <repo-root>
#
# Topology: scripts/netns.sh with NG_NETNS_ROUTER=1 - the usual client, box and nodes,
# plus a router ${P}rtr between the node network and a second link to the client, the
# nodes' route to the client side. VIP 10.100.0.101 (TCP 80, UDP 53) is in tunnel mode,
# VIP 10.100.0.100 (TCP 80) in full-NAT, outer sources 10.200.0.64/26, both ports MTU 1500.
# This kernel has no ipip driver, so every node decapsulates with what the test brings: a
# raw IPPROTO_IPIP socket whose packets' inner halves are written to a TUN device (tun0,
# rp_filter off), and an nft DNAT of VIP:80 -> node:30080 and VIP:53 -> node:30053, the
# way kube-proxy handles a LoadBalancer IP with ipMode VIP. (A real node: `tunl0` up.)
# Checks:
#   (a) 90 HTTP requests to the tunnel VIP all succeed and every node serves >= 10;
#   (b) the replies bypassed the box: its to_clients stays 0 while tunneled >= 90, and the
#       router forwarded at least as many packets to the client (its eth1 TX);
#   (c) a 50 MiB download through the tunnel VIP (replies via the router at full MTU)
#       arrives with the right sha256;
#   (h) a 4 MiB TCP upload to the tunnel VIP completes: its 1500-byte segments do not fit
#       the tunnel, the box answers frag-needed, the client's TCP lowers its segment size
#       (path MTU 1480) and the node receives every byte;
#   (d) a UDP datagram to VIP:53 is echoed from VIP:53 by a node, via the router;
#   (e) a DF UDP datagram at full MTU (1500 bytes) is answered by the box with ICMP
#       frag-needed: the client's path MTU to the VIP becomes 1480, frag_needed_sent >= 1;
#   (f) /v1/vips shows mode tunnel / ipMode VIP and fullnat / Proxy; the full-NAT VIP
#       still serves (replies through the box, to_clients > 0);
#   (g) it stops on SIGTERM with exit 0;
# and always tears down (router included), then checks nothing of the run is left.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

# Before sourcing: netns.sh and the teardown list the router namespace too.
export NG_NETNS_ROUTER=1
# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_tunnel "ngtun$$-" "$@"

readonly REQUESTS=90
readonly SINK_PORT=9000
readonly UPLOAD_BYTES=$((4 * 1024 * 1024))
readonly MIN_EACH=10
readonly TUNNEL_VIP=10.100.0.101
readonly NAT_VIP=10.100.0.100

# The node side's decapsulator: raw socket for IP protocol 4 (the kernel hands it the
# whole packet, outer header included, and sends no "protocol unreachable" while it is
# open), the inner packet written to tun0 as if it had arrived there.
readonly DECAP_PY='
import fcntl, os, socket, struct, sys
name = sys.argv[1]
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
# A deep queue: when it overflows, this kernel answers the dropped packet with "protocol
# unreachable" to the outer source, as if nothing listened (the box counts those as
# to_tunnel_source).
raw.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
print(f"{name}: decapsulating IPIP onto tun0", file=sys.stderr, flush=True)
while True:
    packet = raw.recv(65535)
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) > ihl + 20 and packet[ihl] >> 4 == 4:
        os.write(tun, packet[ihl:])
'

# The node's TCP sink: reads a connection to its end, answers "NAME BYTES".
readonly SINK_PY='
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(16)
def serve(c):
    n = 0
    with c:
        while data := c.recv(65536):
            n += len(data)
        c.sendall(f"{name} {n}\n".encode())
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
'

# The client's upload: BYTES to VIP:PORT, then the sink's answer and the path MTU.
readonly UPLOAD_PY='
import socket, sys
vip, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((vip, port), timeout=30)
s.sendall(b"u" * size)
s.shutdown(socket.SHUT_WR)
answer = s.recv(200).decode().strip()
print("answer", answer)
print("mtu", s.getsockopt(socket.IPPROTO_IP, 14))
'

# The client: a small datagram echoed, then a DF datagram at full MTU; prints the echo
# and the path MTU to the VIP before and after.
readonly PMTU_PY='
import socket, sys, time
vip = sys.argv[1]
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.connect((vip, 53))
s.settimeout(2)
s.send(b"tunnel-echo")
try:
    print("echo", s.recv(2048).decode(errors="replace"))
except OSError as e:
    print("echo-error", e)
before = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
try:
    s.send(b"x" * 1472)  # 1500-byte IP packet, DF: 1520 once encapsulated
except OSError as e:
    print("send-error", e)
after = before
for _ in range(50):
    time.sleep(0.1)
    try:
        after = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    except OSError:
        pass
    if after != before:
        break
print("mtu", before, after)
'

e2e_up || exit 1

say "nodes: IPIP decapsulator on tun0, rp_filter off, nft DNAT $TUNNEL_VIP:80 and :53 to the node"
for i in "${!NG_NODE_NAMES[@]}"; do
  n="${NG_NODE_NAMES[$i]}"
  addr="${NG_NODE_ADDRS[$i]}"
  ns="${P}${n}"
  ip netns exec "$ns" /usr/bin/python3 -c "$DECAP_PY" "$n" </dev/null >>"$work/$n.decap.log" 2>&1 &
  seen_pids+=("$!")
  ip netns exec "$ns" /usr/bin/python3 -c "$SINK_PY" "$n" "$SINK_PORT" </dev/null >>"$work/$n.sink.log" 2>&1 &
  seen_pids+=("$!")
  for ((t = 0; t < 50; t++)); do
    ip -n "$ns" link show tun0 >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! ip -n "$ns" link set tun0 up 2>>"$work/setup.log" ||
    ! ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.tun0.rp_filter=0 >>"$work/setup.log" 2>&1 ||
    ! ip netns exec "$ns" nft -f - >>"$work/setup.log" 2>&1 <<EOF
table ip kubeproxy {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $TUNNEL_VIP tcp dport 80 dnat to $addr:$NG_NODE_PORT
    ip daddr $TUNNEL_VIP udp dport 53 dnat to $addr:$NG_UDP_NODE_PORT
    ip daddr $TUNNEL_VIP tcp dport $SINK_PORT dnat to $addr:$SINK_PORT
  }
}
EOF
  then
    fail "node $n set-up: $(tail -n 3 "$work/setup.log") $(tail -n 3 "$work/$n.decap.log")"
    exit 1
  fi
done
pass "nodes decapsulate IPIP (tun0 up in ${NG_NODE_NAMES[*]})"

cat >"$work/nodegate.conf" <<EOF
dataplane = {
  eal = [ "--no-huge", "-m", "512", "--no-pci", "--no-shconf" ];
  workers = [ 1 ];
  ports = (
    { name = "ext"; device = "net_af_packet0,iface=ext0"; role = "external";
      address = "10.100.0.1/24"; mtu = 1500; },
    { name = "int"; device = "net_af_packet1,iface=int0"; role = "internal";
      address = "10.200.0.1/24"; mtu = 1500; }
  );
  mode = "fullnat";
  tunnel = { source = "10.200.0.64/26"; icmp_rate = 100; icmp_burst = 20; };
  flows = { capacity = 65536; };
};
api = { listen = "127.0.0.1:9080"; };
health = { interval_ms = 1000; timeout_ms = 500; rise = 2; fall = 2; source_address = "$NG_LB_MGMT_ADDR"; };
state_dir = "$work/state";
nodes = (
  { name = "n1"; address = "10.200.0.11"; },
  { name = "n2"; address = "10.200.0.12"; },
  { name = "n3"; address = "10.200.0.13"; }
);
services = (
  { namespace = "default"; name = "dsr"; vip = "$TUNNEL_VIP"; mode = "tunnel";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; },
              { name = "sink"; protocol = "TCP"; port = $SINK_PORT; node_port = $SINK_PORT; } ); },
  { namespace = "default"; name = "web"; vip = "$NAT_VIP";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; } ); }
);
EOF
e2e_start "$work/nodegate.conf" || exit 1

# counter NAME: one counter of /v1/stats ("" when the answer is not usable).
counter() {
  api /v1/stats | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$1" \
    2>/dev/null
}
link_counter() {  # link_counter NS DEV rx|tx: packets through it so far
  ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3_packets" 2>/dev/null || echo 0
}

# (a) requests through the tunnel VIP.
router_tx_before="$(link_counter "${P}rtr" eth1 tx)"
client_rx_before="$(link_counter "$client" eth1 rx)"
say "(a) $REQUESTS requests to http://$TUNNEL_VIP/whoami"
NG_VIP="$TUNNEL_VIP" e2e_requests "$REQUESTS" "$work/requests.txt"
checkpoint
e2e_check_requests "(a)" "$work/requests.txt" "$REQUESTS" "$MIN_EACH"

# (b) the replies went through the router, not the box.
to_clients="$(counter to_clients)"
tunneled="$(counter tunneled)"
router_tx=$(($(link_counter "${P}rtr" eth1 tx) - router_tx_before))
client_rx=$(($(link_counter "$client" eth1 rx) - client_rx_before))
if [[ "$to_clients" == 0 ]] && ((${tunneled:-0} >= REQUESTS && router_tx >= REQUESTS && client_rx >= REQUESTS)); then
  pass "(b) replies bypassed the box: to_clients=0, tunneled=$tunneled; router forwarded $router_tx packets to the client (client eth1 received $client_rx)"
else
  fail "(b) to_clients=${to_clients:-?} (want 0), tunneled=${tunneled:-?} (want >= $REQUESTS), router eth1 tx=$router_tx, client eth1 rx=$client_rx (want >= $REQUESTS)"
fi

# (c) a download much larger than the MTU: full-size segments from the node via the router.
NG_VIP="$TUNNEL_VIP" e2e_big_download "(c) tunnel"

# (h) an upload whose full-size segments do not fit the tunnel until PMTU discovery works.
say "(h) ${UPLOAD_BYTES}-byte TCP upload to $TUNNEL_VIP:$SINK_PORT"
frag_before="$(counter frag_needed_sent)"
step ip netns exec "$client" /usr/bin/python3 -c "$UPLOAD_PY" "$TUNNEL_VIP" "$SINK_PORT" "$UPLOAD_BYTES" \
  >"$work/upload.txt" 2>&1
checkpoint
answer="$(sed -n 's/^answer //p' "$work/upload.txt")"
upload_mtu="$(sed -n 's/^mtu //p' "$work/upload.txt")"
frag_after="$(counter frag_needed_sent)"
if [[ "$answer" =~ ^n[123]\ $UPLOAD_BYTES$ && "$upload_mtu" == 1480 ]] && ((${frag_after:-0} > ${frag_before:-0})); then
  pass "(h) upload: '$answer' received, path MTU $upload_mtu, frag_needed_sent ${frag_before} -> ${frag_after}"
else
  fail "(h) upload: $(tr '\n' ' ' <"$work/upload.txt") frag_needed_sent ${frag_before:-?} -> ${frag_after:-?}"
fi
# Forget the learned path MTU, so (e) starts from 1500 again.
ip -n "$client" route flush cache

# (d) + (e) UDP through the tunnel and path-MTU discovery against the box.
say "(d)(e) UDP echo and a DF datagram at full MTU to $TUNNEL_VIP:53"
step ip netns exec "$client" /usr/bin/python3 -c "$PMTU_PY" "$TUNNEL_VIP" >"$work/pmtu.txt" 2>&1
checkpoint
echo_line="$(grep '^echo' "$work/pmtu.txt")"
if [[ "$echo_line" =~ ^echo\ n[123]\ tunnel-echo$ ]]; then
  pass "(d) UDP via the tunnel answered from $TUNNEL_VIP:53: '${echo_line#echo }'"
else
  fail "(d) UDP echo: $(tr '\n' ' ' <"$work/pmtu.txt")"
fi
read -r _ mtu_before mtu_after < <(grep '^mtu' "$work/pmtu.txt")
frag_needed="$(counter frag_needed_sent)"
if [[ "${mtu_after:-}" == 1480 && "${mtu_before:-}" == 1500 ]] && ((${frag_needed:-0} > ${frag_after:-0})); then
  pass "(e) frag-needed from the box: path MTU to $TUNNEL_VIP $mtu_before -> $mtu_after, frag_needed_sent=$frag_needed"
else
  fail "(e) path MTU ${mtu_before:-?} -> ${mtu_after:-?} (want 1500 -> 1480), frag_needed_sent=${frag_needed:-?}; $(tr '\n' ' ' <"$work/pmtu.txt")"
fi

# (f) modes in the status API, and the full-NAT VIP next to the tunnel one.
api /v1/vips >"$work/vips.json"
if modes="$(/usr/bin/python3 - "$work/vips.json" "$TUNNEL_VIP" "$NAT_VIP" <<'PY'
import json, sys
vips = {v["vip"]: v for v in json.load(open(sys.argv[1]))["vips"]}
t, n = vips[sys.argv[2]], vips[sys.argv[3]]
print(f"{sys.argv[2]} {t['mode']}/{t['ip_mode']}, {sys.argv[3]} {n['mode']}/{n['ip_mode']}")
sys.exit(0 if (t["mode"], t["ip_mode"], n["mode"], n["ip_mode"]) == ("tunnel", "VIP", "fullnat", "Proxy") else 1)
PY
)"; then
  pass "(f) /v1/vips: $modes"
else
  fail "(f) /v1/vips modes: ${modes:-unreadable answer}"
fi
NG_VIP="$NAT_VIP" e2e_requests 12 "$work/nat.txt"
checkpoint
nat_ok="$(grep -cx 'n[123]' "$work/nat.txt")"
to_clients="$(counter to_clients)"
if ((nat_ok == 12 && ${to_clients:-0} > 0)); then
  pass "(f) full-NAT VIP $NAT_VIP served 12/12 beside the tunnel VIP, replies through the box (to_clients=$to_clients)"
else
  fail "(f) full-NAT VIP: $nat_ok/12 answered, to_clients=${to_clients:-?}"
fi

to_source="$(api /v1/stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"]["to_tunnel_source"])' 2>/dev/null)"
say "ICMP from nodes to outer sources (to_tunnel_source): ${to_source:-?}"
say "drops: $(api /v1/stats | /usr/bin/python3 -c 'import json,sys; print({k: v for k, v in json.load(sys.stdin)["drops"].items() if v})' 2>/dev/null)"

# (g) clean stop.
stop_nodegate
if [[ "$ng_rc" == 0 ]]; then
  pass "(g) nodegate stopped on SIGTERM with exit 0"
else
  fail "(g) nodegate exit status $ng_rc after SIGTERM"
fi
exit 0
