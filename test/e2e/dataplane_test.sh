#!/usr/bin/env bash
# End-to-end: source ranges, ClientIP session affinity and UDP through NodeGate (issue:
# complete data plane), in network namespaces with real TCP and UDP.
#
# Usage: test/e2e/dataplane_test.sh <nodegate-binary> <repo-root>
#
# The demo topology (one client, 10.100.0.2) with four Services instead of the demo's one:
#   open    10.100.0.100 TCP 80            source_ranges 10.100.0.2/32 (the client)
#   closed  10.100.0.101 TCP 80 and UDP 53 source_ranges 203.0.113.0/24 (not the client)
#   sticky  10.100.0.102 TCP 80 and UDP 53 session_affinity ClientIP (600 s)
#   dns     10.100.0.103 UDP 53            -> every node's UDP echo server on :30053
# Checks:
#   (a) the denied client gets nothing from `closed` (no TCP connection, no UDP answer)
#       while `open` serves it; /v1/stats source_denied rises by exactly the packets sent
#       to `closed` (SYNs and retransmissions counted in the client's own TCP counters,
#       plus the datagrams), and not at all for `open`;
#   (b) 30 requests to `sticky` all land on one node C (X-Node and the whoami body agree),
#       its UDP port answers from C too (the first choice hashes the client address
#       alone), while 30 requests to `open` (Cluster, no affinity) spread over several
#       nodes; a reload (SIGHUP) that takes C out of `sticky` moves the client to one
#       other node X; a reload that brings C back keeps it on X, although Maglev alone
#       would choose C again (as it did at first): the affinity table at work;
#   (c) UDP through a VIP: datagrams from one client socket all get their answer, from
#       one node (the flow sticks); 24 sockets get every answer, from several nodes.
#   (d) ICMP errors translated: UDP to `dns` port 54, whose nodePort has no listener: the
#       node's kernel answers port unreachable to the SNAT address, the box sends it on
#       to the client from the VIP quoting the client's own datagram, so the client's
#       connected socket fails with ECONNREFUSED at once (not a timeout);
#       /v1/stats icmp_errors_translated rises.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_dataplane "ngd$$-" "$@"

readonly OPEN_VIP=$NG_VIP CLOSED_VIP=10.100.0.101 STICKY_VIP=10.100.0.102 DNS_VIP=10.100.0.103
readonly REQUESTS=30
readonly NO_LISTENER_NODE_PORT=30054  # nothing listens there: the nodes answer port unreachable

e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
# write_services STICKY_NODES: the demo config with this test's Services; STICKY_NODES is
# the `nodes` setting of `sticky` ("" = every node).
write_services() {
  python3 - "$work/nodegate.conf" "$1" <<PY
import sys
path, sticky_nodes = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text[:text.index("services = (")] + """services = (
  { namespace = "e2e"; name = "open"; vip = "$OPEN_VIP"; source_ranges = [ "$NG_CLIENT_ADDR/32" ];
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; } ); },
  { namespace = "e2e"; name = "closed"; vip = "$CLOSED_VIP"; source_ranges = [ "203.0.113.0/24" ];
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; } ); },
  { namespace = "e2e"; name = "sticky"; vip = "$STICKY_VIP"; """ + sticky_nodes + """
    session_affinity = "ClientIP"; session_affinity_timeout = 600;
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = $NG_NODE_PORT; },
              { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; } ); },
  { namespace = "e2e"; name = "dns"; vip = "$DNS_VIP";
    ports = ( { name = "dns"; protocol = "UDP"; port = 53; node_port = $NG_UDP_NODE_PORT; },
              { name = "nolistener"; protocol = "UDP"; port = 54; node_port = $NO_LISTENER_NODE_PORT; } ); }
);
"""
open(path + ".new", "w").write(text)
PY
  mv "$work/nodegate.conf.new" "$work/nodegate.conf"
}
write_services ""
e2e_start "$work/nodegate.conf" || exit 1

# ngstat KEY: drops.KEY, counters.KEY or generation from /v1/stats ("" when unreadable).
ngstat() {
  api /v1/stats | python3 -c '
import json, sys
s, k = json.load(sys.stdin), sys.argv[1]
print(s["generation"] if k == "generation" else s["drops"].get(k, s["counters"].get(k)))' "$1" 2>/dev/null
}
# wait_stat KEY VALUE SECONDS: until KEY reads VALUE (the workers' counters are read live
# and may lag a burst); prints the last value read.
wait_stat() {
  local v="" i
  for ((i = 0; i < $3 * 10; i++)); do
    v="$(ngstat "$1")"
    [[ "$v" == "$2" ]] && break
    sleep 0.1
  done
  echo "$v"
}
# requests VIP N FILE: N HTTP requests (one connection each); per line "X-Node body", or
# error:RC.
requests() {
  step ip netns exec "$client" bash -c '
    for ((i = 0; i < $2; i++)); do
      if out=$(curl -s --max-time 3 --fail -D - "http://$1/whoami"); then
        node=$(printf "%s\n" "$out" | sed -n "s/^X-Node: *\([a-z0-9]*\).*/\1/p")
        echo "$node $(printf "%s\n" "$out" | tail -n 1)"
      else
        echo "error:$?"
      fi
    done' _ "$1" "$2" >"$3" 2>&1
}
# nodes_of FILE: "n1=K n2=K n3=K errors=K mismatched=K" (mismatched: X-Node != body).
nodes_of() {
  awk '/^error/ { e++; next } { c[$1]++; if ($1 != $2) m++ }
       END { printf "n1=%d n2=%d n3=%d errors=%d mismatched=%d", c["n1"], c["n2"], c["n3"], e, m }' "$1"
}
distinct_nodes() { awk '!/^error/ { print $1 }' "$1" | sort -u | wc -l; }
# all_on NODE FILE: every line of FILE is an answer from NODE (X-Node and body).
all_on() { [[ -n "$1" ]] && (($(grep -c "^$1 $1\$" "$2") == $(wc -l <"$2"))); }
# reload STICKY_NODES: rewrite the Services, SIGHUP, wait (<= 5 s) for a new generation;
# prints the generation now running.
reload() {
  local before now i
  before="$(ngstat generation)"
  write_services "$1"
  kill -HUP "$ng_pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    now="$(ngstat generation)"
    [[ "$now" =~ ^[0-9]+$ && "$before" =~ ^[0-9]+$ ]] && ((now > before)) && break
    sleep 0.1
  done
  echo "$now"
}

# UDP client (runs in the client namespace). Modes:
#   one VIP PORT N        N datagrams from one socket, each waiting up to 2 s for its answer
#   many VIP PORT N       one datagram from each of N sockets (N source ports)
#   denied VIP PORT N     N datagrams from one socket; answers are counted, none expected
# Prints "sent=N answered=K nodes=n1:K,n2:K wrong=K" (wrong: answer not "NODE payload").
cat >"$work/udp_client.py" <<'PY'
import socket, sys, collections
mode, vip, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
nodes, answered, wrong = collections.Counter(), 0, 0
def ask(sock, payload, timeout):
    global answered, wrong
    sock.settimeout(timeout)
    sock.sendto(payload, (vip, port))
    try:
        data, peer = sock.recvfrom(65535)
    except socket.timeout:
        return
    answered += 1
    node, _, echoed = data.partition(b" ")
    if peer != (vip, port) or echoed != payload:
        wrong += 1
    nodes[node.decode(errors="replace")] += 1
if mode in ("one", "denied"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        ask(s, b"datagram-%d" % i, 2.0 if mode == "one" else 0.2)
else:
    for i in range(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ask(s, b"socket-%d" % i, 2.0)
print(f"sent={n} answered={answered} nodes={','.join(f'{k}:{v}' for k, v in sorted(nodes.items())) or '-'} wrong={wrong}")
PY

# TCP client for the denied service: ATTEMPTS connects of 2 s each; prints
# "syns=N connected=K", N = SYNs the client's kernel sent (first SYNs + retransmissions,
# from the namespace's own /proc/net/snmp and /proc/net/netstat).
cat >"$work/tcp_denied.py" <<'PY'
import socket, sys
vip, attempts = sys.argv[1], int(sys.argv[2])
def counter(path, group, name):
    lines = [l.split() for l in open(path) if l.startswith(group + ":")]
    return int(lines[1][lines[0].index(name)])
def syns():
    return counter("/proc/net/snmp", "Tcp", "ActiveOpens") + counter("/proc/net/netstat", "TcpExt", "TCPSynRetrans")
before, connected = syns(), 0
for _ in range(attempts):
    try:
        socket.create_connection((vip, 80), timeout=2).close()
        connected += 1
    except OSError:
        pass
print(f"syns={syns() - before} connected={connected}")
PY

# --- (a) source ranges --------------------------------------------------------------
say "(a) the client against '$CLOSED_VIP' (203.0.113.0/24 only) and '$OPEN_VIP' ($NG_CLIENT_ADDR/32)"
denied_before="$(ngstat source_denied)"
step ip netns exec "$client" python3 "$work/tcp_denied.py" "$CLOSED_VIP" 4 >"$work/a.tcp" 2>&1
checkpoint
step ip netns exec "$client" python3 "$work/udp_client.py" denied "$CLOSED_VIP" 53 20 >"$work/a.udp" 2>&1
checkpoint
syns="$(sed -n 's/^syns=\([0-9]*\).*/\1/p' "$work/a.tcp")"
tcp_connected="$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' "$work/a.tcp")"
udp_answered="$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' "$work/a.udp")"
if [[ "$denied_before" =~ ^[0-9]+$ && "$syns" =~ ^[0-9]+$ ]]; then
  want=$((denied_before + syns + 20))
  denied_after="$(wait_stat source_denied "$want" 3)"
  if [[ "$denied_after" == "$want" && "$tcp_connected" == 0 && "$udp_answered" == 0 ]]; then
    pass "(a) denied: 4 connects (0 connected, $syns SYNs sent) and 20 datagrams (0 answered); source_denied $denied_before -> $denied_after (+$((syns + 20)))"
  else
    fail "(a) denied: $(cat "$work/a.tcp"); $(cat "$work/a.udp"); source_denied $denied_before -> $denied_after (want $want)"
  fi
else
  fail "(a) could not read counters: source_denied '$denied_before', client: $(cat "$work/a.tcp")"
fi
denied_before="$(ngstat source_denied)"
requests "$OPEN_VIP" 10 "$work/a.open"
checkpoint
sleep 0.3
denied_after="$(ngstat source_denied)"
if (($(grep -c '^n[123] n[123]$' "$work/a.open") == 10)) && [[ "$denied_after" == "$denied_before" ]]; then
  pass "(a) allowed: 10/10 requests to $OPEN_VIP served ($(nodes_of "$work/a.open")); source_denied stays $denied_after"
else
  fail "(a) allowed: $(nodes_of "$work/a.open"); source_denied $denied_before -> $denied_after"
fi

# --- (b) ClientIP affinity ------------------------------------------------------------
say "(b) $REQUESTS requests each to $STICKY_VIP (ClientIP) and $OPEN_VIP (no affinity)"
requests "$STICKY_VIP" "$REQUESTS" "$work/b.sticky"
checkpoint
requests "$OPEN_VIP" "$REQUESTS" "$work/b.open"
checkpoint
first="$(awk '!/^error/ { print $1; exit }' "$work/b.sticky")"
if all_on "$first" "$work/b.sticky" && (($(wc -l <"$work/b.sticky") == REQUESTS)); then
  pass "(b) ClientIP: $REQUESTS/$REQUESTS requests on $first ($(nodes_of "$work/b.sticky"))"
else
  fail "(b) ClientIP: not all on one node: $(nodes_of "$work/b.sticky")"
fi
if (($(grep -c '^n[123] n[123]$' "$work/b.open") == REQUESTS)) && (($(distinct_nodes "$work/b.open") >= 2)); then
  pass "(b) no affinity: $REQUESTS/$REQUESTS requests spread over $(distinct_nodes "$work/b.open") nodes ($(nodes_of "$work/b.open"))"
else
  fail "(b) no affinity: $(nodes_of "$work/b.open") (want every request served, >= 2 nodes)"
fi
step ip netns exec "$client" python3 "$work/udp_client.py" many "$STICKY_VIP" 53 12 >"$work/b.udp" 2>&1
checkpoint
if grep -qxF "sent=12 answered=12 nodes=$first:12 wrong=0" "$work/b.udp"; then
  pass "(b) ClientIP over UDP: 12 sockets, every answer from $first like TCP ($(cat "$work/b.udp"))"
else
  fail "(b) ClientIP over UDP: $(cat "$work/b.udp") (want 12 answers from $first)"
fi
# The remembered node leaves the Service: the client is chosen again, once.
others=""
for n in "${NG_NODE_NAMES[@]}"; do [[ "$n" != "$first" ]] && others+="${others:+, }\"$n\""; done
generation="$(reload "nodes = [ $others ];")"
requests "$STICKY_VIP" "$REQUESTS" "$work/b.moved"
checkpoint
second="$(awk '!/^error/ { print $1; exit }' "$work/b.moved")"
if all_on "$second" "$work/b.moved" && [[ "$second" != "$first" ]]; then
  pass "(b) $first left the Service (generation $generation): $REQUESTS/$REQUESTS requests on $second ($(nodes_of "$work/b.moved"))"
else
  fail "(b) after $first left (generation $generation): $(nodes_of "$work/b.moved") (want all on one node other than $first)"
fi
# It comes back: today's Maglev table puts this client on $first again (as at first), the
# affinity table keeps it on $second.
generation="$(reload "")"
requests "$STICKY_VIP" "$REQUESTS" "$work/b.back"
checkpoint
if all_on "$second" "$work/b.back"; then
  pass "(b) $first is back (generation $generation, Maglev alone would choose $first): $REQUESTS/$REQUESTS still on $second"
else
  fail "(b) after $first came back (generation $generation): $(nodes_of "$work/b.back") (want all on $second)"
fi

# --- (c) UDP through a VIP ------------------------------------------------------------
say "(c) UDP to $DNS_VIP:53 (nodes' echo servers on :$NG_UDP_NODE_PORT)"
step ip netns exec "$client" python3 "$work/udp_client.py" one "$DNS_VIP" 53 10 >"$work/c.one" 2>&1
checkpoint
if grep -qE "^sent=10 answered=10 nodes=n[123]:10 wrong=0$" "$work/c.one"; then
  pass "(c) one socket: 10/10 datagrams answered by one node ($(cat "$work/c.one"))"
else
  fail "(c) one socket: $(cat "$work/c.one") (want 10 answers from one node)"
fi
step ip netns exec "$client" python3 "$work/udp_client.py" many "$DNS_VIP" 53 24 >"$work/c.many" 2>&1
checkpoint
spread="$(sed -n 's/.* nodes=\([^ ]*\) .*/\1/p' "$work/c.many" | tr ',' '\n' | grep -c .)"
if grep -qE "^sent=24 answered=24 .* wrong=0$" "$work/c.many" && ((spread >= 2)); then
  pass "(c) 24 sockets: 24/24 answered from $spread nodes ($(cat "$work/c.many"))"
else
  fail "(c) 24 sockets: $(cat "$work/c.many") (want 24 answers from >= 2 nodes)"
fi

# --- (d) ICMP port unreachable from a node reaches the client, translated --------------
say "(d) UDP to $DNS_VIP:54 (nodePort $NO_LISTENER_NODE_PORT: no listener on the nodes)"
icmp_count() { api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["counters"]["icmp_errors_translated"])' 2>/dev/null; }
icmp_before="$(icmp_count)"
step ip netns exec "$client" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 54))
s.settimeout(3.0)
t = time.monotonic()
try:
    s.send(b"anyone?")
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused after %.0f ms" % ((time.monotonic() - t) * 1000))
except socket.timeout:
    print("timeout")
' "$DNS_VIP" >"$work/d.txt" 2>&1
checkpoint
icmp_after="$(icmp_count)"
if grep -q "^refused" "$work/d.txt" && [[ -n "$icmp_before" && -n "$icmp_after" ]] && ((icmp_after > icmp_before)); then
  pass "(d) $(cat "$work/d.txt") (ECONNREFUSED from the translated port unreachable); icmp_errors_translated $icmp_before -> $icmp_after"
else
  fail "(d) client: $(cat "$work/d.txt") (want refused); icmp_errors_translated '$icmp_before' -> '$icmp_after'"
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
