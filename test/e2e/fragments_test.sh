#!/usr/bin/env bash
# End-to-end: IPv4 fragments through NodeGate's full-NAT (fragment policy in
# dataplane/fwd/processor.cc), in network namespaces with real kernels on both ends.
#
# Usage: test/e2e/fragments_test.sh <nodegate-binary> <repo-root>
#
# The demo topology with one Service, 10.100.0.100 UDP 53 -> every node's UDP echo server
# on :30053 (MTU 1500 everywhere), the box's ports read with net_pcap (see below). Checks:
#   (a) 4000-byte datagrams from the client to VIP:53 leave the client's kernel as three
#       fragments each; the node's kernel reassembles them and its echo server answers
#       with "NODE " + the whole datagram (4003 bytes), which the node's kernel fragments
#       toward the SNAT address; the client's kernel reassembles the answer: every answer
#       arrives whole, byte for byte, from one node;
#   (b) datagrams from several sockets (several flows, several nodes) do the same;
#   (c) /v1/stats: fragments_forwarded is exactly 6 per exchange (3 each way), and no
#       fragment_* drop was counted.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_fragments "ngf$$-" "$@"

readonly DNS_VIP=$NG_VIP SIZE=4000 ONE=8 MANY=12

e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
# The data ports are read with net_pcap here, not the demo's net_af_packet: DPDK's
# af_packet PMD (22.11) joins its sockets to a PACKET_FANOUT group with
# PACKET_FANOUT_FLAG_DEFRAG, so the box's kernel reassembles fragments before DPDK sees
# them, and the box would get one 4028-byte frame instead of three fragments. libpcap's
# socket has no fanout: the fragments reach the data plane as they are on the wire, as
# they do from a NIC. rx_iface_in: only frames arriving on the veth, not our own sends.
python3 - "$work/nodegate.conf" <<PY
import sys
path = sys.argv[1]
text = open(path).read()
for i, dev in ((0, "ext0"), (1, "int0")):
    old = 'device = "net_af_packet%d,iface=%s"' % (i, dev)
    assert old in text, old
    text = text.replace(old, 'device = "net_pcap%d,rx_iface_in=%s,tx_iface=%s"' % (i, dev, dev))
text = text[:text.index("services = (")] + """services = (
  { namespace = "e2e"; name = "dns"; vip = "$DNS_VIP";
    ports = ( { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; } ); }
);
"""
open(path, "w").write(text)
PY
e2e_start "$work/nodegate.conf" || exit 1

# ngstat KEY: drops.KEY or counters.KEY from /v1/stats ("" when unreadable).
ngstat() {
  api /v1/stats | python3 -c '
import json, sys
s, k = json.load(sys.stdin), sys.argv[1]
print(s["drops"].get(k, s["counters"].get(k)))' "$1" 2>/dev/null
}

# UDP client (client namespace): big datagrams of random bytes, each answer checked whole.
#   one VIP PORT N SIZE    N datagrams from one socket
#   many VIP PORT N SIZE   one datagram from each of N sockets
# Prints "sent=N answered=K nodes=n1:K,... wrong=K" (wrong: an answer that is not
# "NODE " + exactly the datagram sent).
cat >"$work/big_udp.py" <<'PY'
import collections, os, socket, sys
mode, vip, port, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
nodes, answered, wrong = collections.Counter(), 0, 0
def ask(sock):
    global answered, wrong
    payload = os.urandom(size)
    sock.sendto(payload, (vip, port))
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        return
    answered += 1
    name, _, body = data.partition(b" ")
    if body != payload:
        wrong += 1
    else:
        nodes[name.decode()] += 1
def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    return s
if mode == "one":
    s = sock()
    for _ in range(n):
        ask(s)
else:
    for _ in range(n):
        ask(sock())
print("sent=%d answered=%d nodes=%s wrong=%d" % (
    n, answered, ",".join("%s:%d" % kv for kv in sorted(nodes.items())), wrong))
PY

# Warm-up: a small datagram until one is answered (the box learns the client's MAC from
# its ARP, resolves the nodes), so every later datagram meets a ready path.
warm=""
for ((i = 0; i < 10; i++)); do
  warm="$(ip netns exec "$client" timeout 5 python3 "$work/big_udp.py" one "$DNS_VIP" 53 1 100 2>&1)"
  [[ "$warm" == "sent=1 answered=1 "* ]] && break
done
if [[ "$warm" == "sent=1 answered=1 "* ]]; then pass "warm-up: a small datagram answered ($warm)"; else fail "warm-up: $warm"; fi
before="$(ngstat fragments_forwarded)"

# --- (a) one socket ------------------------------------------------------------------------
say "(a) $ONE datagrams of $SIZE bytes from one socket to $DNS_VIP:53"
step ip netns exec "$client" timeout 60 python3 "$work/big_udp.py" one "$DNS_VIP" 53 "$ONE" "$SIZE" \
  >"$work/a.out" 2>&1
checkpoint
if grep -qE "^sent=$ONE answered=$ONE nodes=n[123]:$ONE wrong=0$" "$work/a.out"; then
  pass "(a) one socket: $ONE/$ONE answers of $((SIZE + 3)) bytes arrived whole, from one node ($(cat "$work/a.out"))"
else
  fail "(a) one socket: $(cat "$work/a.out") (want $ONE whole answers from one node)"
fi

# --- (b) many sockets -----------------------------------------------------------------------
say "(b) one datagram of $SIZE bytes from each of $MANY sockets"
step ip netns exec "$client" timeout 60 python3 "$work/big_udp.py" many "$DNS_VIP" 53 "$MANY" "$SIZE" \
  >"$work/b.out" 2>&1
checkpoint
spread="$(sed -n 's/.* nodes=\([^ ]*\) .*/\1/p' "$work/b.out" | tr ',' '\n' | grep -c .)"
if grep -qE "^sent=$MANY answered=$MANY .* wrong=0$" "$work/b.out" && ((spread >= 2)); then
  pass "(b) $MANY sockets: every answer whole, from $spread nodes ($(cat "$work/b.out"))"
else
  fail "(b) $MANY sockets: $(cat "$work/b.out") (want $MANY whole answers from >= 2 nodes)"
fi

# --- (c) counters -----------------------------------------------------------------------------
want=$((before + 6 * (ONE + MANY)))
after=""
for ((i = 0; i < 20; i++)); do   # worker counters are read live and may lag a burst
  after="$(ngstat fragments_forwarded)"
  [[ "$after" == "$want" ]] && break
  sleep 0.1
done
frag_drops=0
for reason in fragment fragment_no_flow fragment_malformed fragment_table_full; do
  v="$(ngstat "$reason")"
  [[ "$v" =~ ^[0-9]+$ ]] || v=999
  frag_drops=$((frag_drops + v))
done
if [[ "$after" == "$want" && "$frag_drops" == 0 ]]; then
  pass "(c) fragments_forwarded $before -> $after (6 per exchange), no fragment drops"
else
  fail "(c) fragments_forwarded $before -> $after (want $want), fragment drops $frag_drops (want 0)"
fi

if kill -0 "$ng_pid" 2>/dev/null && [[ "$(api_code /healthz)" == 200 ]]; then
  pass "nodegate alive, /healthz 200"
else
  fail "nodegate alive (process or /healthz gone)"
fi
stop_nodegate
checkpoint
if [[ "$ng_rc" == 0 ]]; then pass "nodegate exited 0 on SIGTERM"; else fail "nodegate exit status $ng_rc on SIGTERM"; fi
exit 0   # the EXIT trap tears down and reports
