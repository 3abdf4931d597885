#!/usr/bin/env bash
# End-to-end: IPv6 and dual stack through NodeGate in fullnat mode, in network namespaces.
#
# Usage: test/e2e/ipv6_test.sh <nodegate-binary> <repo-root>
#
# The scripts/netns.sh topology with IPv6 (NG_NETNS_IPV6=1): the client has
# $NG_CLIENT_ADDR6, the nodes $NG_NODE_ADDRS6; the box's data ports get IPv6 addresses
# in its config only (its kernel keeps IPv6 off there: NodeGate answers Neighbor
# Solicitations itself). One dual-stack Service (vips = [VIP4, VIP6]) and checks:
#   (a) 120 HTTP requests to http://[VIP6]/whoami all succeed, every node serves >= 20%;
#   (b) the same Service still answers on its IPv4 VIP;
#   (c) a 50 MiB download over IPv6 arrives with the right sha256;
#   (d) UDP request/response over IPv6;
#   (e) ping6 of the VIP is answered (ICMPv6 echo);
#   (f) /v1/vips lists both VIPs with the nodes' IPv6 addresses as backends, na_sent >= 1
#       (the IPv6 VIP announced by unsolicited NA), and the
#       nodes saw the box's IPv6 SNAT address as the client (full-NAT); /v1/status shows
#       the IPv6 flow table sized by dataplane.flows.capacity6 (set above its default);
#   (g) source ranges: a reload restricting the Service to IPv4 198.51.100.0/24 shuts
#       the IPv6 client out (and the IPv4 one, which is outside it too);
#   (h) Kubernetes, dual stack: nodegate restarted with the controller against the fake
#       API server (nodes with an IPv4 and an IPv6 InternalIP, pools of both families):
#       a RequireDualStack Service with ipFamilies [IPv6, IPv4] gets two status addresses,
#       IPv6 first, and serves HTTP on both; an IPv6-only Service gets one IPv6 address
#       and serves on it;
# and always tears down, then checks that nothing of the run is left.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_ipv6 "ng6e$$-" "$@"
export NG_NETNS_IPV6=1

readonly REQUESTS=120

# The demo config, made dual stack: IPv6 on both ports, nodes with both families, the
# Service on both VIPs, probes from mgmt0 (the kernel picks the IPv6 source there), an
# IPv6 flow table of its own size (capacity6; the default would be 65536 / 4).
write_conf() {
  local ranges="$1"
  e2e_demo_conf "$work/nodegate.conf"
  /usr/bin/python3 - "$work/nodegate.conf" "$ranges" <<'EOF'
import re, sys
path, ranges = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace('address = "10.100.0.1/24";', 'address = "10.100.0.1/24"; address6 = "fd00:100::1/64";')
text = text.replace('address = "10.200.0.1/24";', 'address = "10.200.0.1/24"; address6 = "fd00:200::1/64";')
text = text.replace('snat = { addresses = [ "10.200.0.1" ]; };', 'snat = { addresses = [ "10.200.0.1", "fd00:200::1" ]; };')
text = text.replace('flows = { capacity = 65536;', 'flows = { capacity = 65536; capacity6 = 32768;')
for i in (1, 2, 3):
    text = text.replace(f'address = "10.200.0.1{i}";', f'addresses = [ "10.200.0.1{i}", "fd00:200::1{i}" ];')
text = text.replace('vip = "10.100.0.100";', 'vips = [ "10.100.0.100", "fd00:100::100" ];' + (f' source_ranges = [ {ranges} ];' if ranges else ''))
text = text.replace('    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; } );',
                    '    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; },\n'
                    '              { name = "echo"; protocol = "UDP"; port = 53; node_port = 30053; } );')
open(path, "w").write(text)
EOF
}

e2e_up || exit 1
write_conf ""
grep -q 'fd00:100::100' "$work/nodegate.conf" && grep -q 'capacity6 = 32768;' "$work/nodegate.conf" ||
  { fail "dual-stack config not written"; exit 1; }
e2e_start "$work/nodegate.conf" || exit 1

# (a) IPv6 requests, one TCP connection each.
say "(a) $REQUESTS requests to http://[$NG_VIP6]/whoami"
e2e_requests "$REQUESTS" "$work/requests6.txt" "[$NG_VIP6]"
checkpoint
e2e_check_requests "(a) IPv6:" "$work/requests6.txt" "$REQUESTS"

# (b) The IPv4 VIP of the same Service.
got4="$(ip netns exec "$client" curl -s --max-time 5 "http://$NG_VIP/whoami")"
[[ "$got4" =~ ^n[123]$ ]] && pass "(b) the IPv4 VIP of the dual-stack Service answers ($got4)" \
  || fail "(b) IPv4 VIP: '$got4'"

# (c) 50 MiB over IPv6.
say "(c) download http://[$NG_VIP6]/big.bin"
step ip netns exec "$client" curl -s -g --fail --max-time 120 -o "$work/big.bin" -w '%{time_total}' \
  "http://[$NG_VIP6]/big.bin" >"$work/big.time"
curl_rc=$?
checkpoint
got_sha="$(sha256sum "$work/big.bin" 2>/dev/null | cut -d' ' -f1)"
if ((curl_rc == 0)) && [[ "$got_sha" == "$big_sha" ]]; then
  pass "(c) big.bin over IPv6 in $(cat "$work/big.time") s, sha256 ${got_sha:0:16}... matches"
else
  fail "(c) big.bin over IPv6: curl exit $curl_rc, $(stat -c %s "$work/big.bin" 2>/dev/null || echo 0) bytes, sha256 '${got_sha:0:16}'"
fi
rm -f "$work/big.bin"

# (d) UDP over IPv6: the echo answers with the node's name.
udp="$(ip netns exec "$client" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
for attempt in range(3):
    s.sendto(b"hello6", (sys.argv[1], 53))
    try:
        print(s.recvfrom(2048)[0].decode()); break
    except socket.timeout:
        pass
' "$NG_VIP6" 2>&1)"
[[ "$udp" =~ ^n[123]\ hello6$ ]] && pass "(d) UDP over IPv6: '$udp'" || fail "(d) UDP over IPv6: '$udp'"

# (e) ICMPv6 echo on the VIP.
if ip netns exec "$client" ping -6 -c 3 -i 0.2 -W 2 "$NG_VIP6" >"$work/ping6.txt" 2>&1; then
  pass "(e) ping6 $NG_VIP6: $(grep -o '[0-9]* received' "$work/ping6.txt")"
else
  fail "(e) ping6 $NG_VIP6: $(tail -n 2 "$work/ping6.txt" | tr '\n' ' ')"
fi

# (f) The status API and the nodes' view of the client.
vips="$(api /v1/vips)"
if jq -e --arg v6 "$NG_VIP6" '[.vips[].vip] | index($v6) != null and index("10.100.0.100") != null' <<<"$vips" >/dev/null &&
   jq -e --arg v6 "$NG_VIP6" '.vips[] | select(.vip == $v6) | [.ports[0].backends[].address] == ["fd00:200::11","fd00:200::12","fd00:200::13"]' <<<"$vips" >/dev/null; then
  pass "(f) /v1/vips: both VIPs, the IPv6 one backed by the nodes' IPv6 addresses"
else
  fail "(f) /v1/vips: $(jq -c '[.vips[] | {vip, b: [.ports[0].backends[].address]}]' <<<"$vips" 2>&1 | head -c 400)"
fi
capacities="$(api /v1/status | jq -c '[.workers[] | [.flow_capacity, .flow6_capacity]]' 2>/dev/null)"
if [[ "$capacities" == "[[65536,32768]]" ]]; then
  pass "(f) /v1/status: flow tables of 65536 IPv4 and 32768 IPv6 flows (flows.capacity6)"
else
  fail "(f) /v1/status [flow_capacity, flow6_capacity] per worker: '$capacities' (want [[65536,32768]])"
fi
# Worker 0 announced the IPv6 VIP when it appeared (unsolicited NA, fwd::announceVips6).
na_sent="$(api /v1/stats | jq -r '.counters.na_sent // empty' 2>/dev/null)"
if [[ "$na_sent" =~ ^[0-9]+$ ]] && ((na_sent >= 1)); then
  pass "(f) /v1/stats na_sent=$na_sent: the IPv6 VIP was announced by unsolicited NA"
else
  fail "(f) /v1/stats na_sent='$na_sent' (want >= 1: the IPv6 VIP announced at start)"
fi
if grep -hq '^fd00:200::1 ' "$(ng_netns_workdir "$P")"/n?.log 2>/dev/null ||
   grep -hqE '(^|[^0-9a-f:])fd00:200::1([^0-9a-f:]|$)' "$(ng_netns_workdir "$P")"/n?.log 2>/dev/null; then
  pass "(f) the nodes saw the box's IPv6 SNAT address fd00:200::1 as the client (full-NAT)"
else
  fail "(f) no request from fd00:200::1 in the nodes' logs: $(tail -n 2 "$(ng_netns_workdir "$P")/n1.log" | tr '\n' ' ')"
fi

# (g) Source ranges: IPv4-only ranges shut the IPv6 VIP (fail closed), and this client's
# IPv4 address is outside them too.
# reload RANGES GENERATION: the config with these source ranges, SIGHUP, wait (5 s at
# most) until GENERATION is compiled.
reload() {
  local i
  write_conf "$1"
  kill -HUP "$ng_pid"
  for ((i = 0; i < 50; i++)); do
    (($(api /v1/status | jq -r '.generation.number // 0' 2>/dev/null || echo 0) >= $2)) && return 0
    sleep 0.1
  done
  say "reload: generation $2 not reached"
}
reload '"198.51.100.0/24"' 2
code6="$(ip netns exec "$client" curl -s -g -o /dev/null -w '%{http_code}' --max-time 2 "http://[$NG_VIP6]/whoami")"
denied="$(api /v1/stats | jq -r '.drops.source_denied // 0' 2>/dev/null)"
if [[ "$code6" == 000 ]] && ((denied > 0)); then
  pass "(g) IPv4-only source ranges: the IPv6 client gets nothing (source_denied=$denied)"
else
  fail "(g) IPv6 client after an IPv4-only range: HTTP '$code6', source_denied='$denied'"
fi
reload '"fd00:100::/64"' 3
got6="$(ip netns exec "$client" curl -s -g --max-time 5 "http://[$NG_VIP6]/whoami")"
code4="$(ip netns exec "$client" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$NG_VIP/whoami")"
if [[ "$got6" =~ ^n[123]$ && "$code4" == 000 ]]; then
  pass "(g) range fd00:100::/64: the IPv6 client is served ($got6), the IPv4 VIP admits nobody"
else
  fail "(g) range fd00:100::/64: IPv6 '$got6', IPv4 HTTP '$code4'"
fi

# (h) The Kubernetes controller, dual stack.
stop_nodegate
readonly PY=/usr/bin/python3
"$PY" - "$work/state.json" "${NG_NODE_NAMES[@]}" "${NG_NODE_ADDRS[@]}" "${NG_NODE_ADDRS6[@]}" <<'PY'
import json, sys
out, rest = sys.argv[1], sys.argv[2:]
k = len(rest) // 3
names, v4, v6 = rest[:k], rest[k:2 * k], rest[2 * k:]
nodes = [{"metadata": {"name": n}, "status": {"addresses": [
             {"type": "InternalIP", "address": a}, {"type": "InternalIP", "address": b}],
             "conditions": [{"type": "Ready", "status": "True"}]}} for n, a, b in zip(names, v4, v6)]
def svc(name, families, policy):
    return {"metadata": {"name": name, "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "nodegate.io/lb",
                     "ipFamilies": families, "ipFamilyPolicy": policy,
                     "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]}}
json.dump({"nodes": nodes, "services": [svc("dual", ["IPv6", "IPv4"], "RequireDualStack"),
                                        svc("six", ["IPv6"], "SingleStack")]}, open(out, "w"))
PY
e2e_fake_apiserver "$work/state.json" --port 0 || exit 1
sed -n '/^dataplane = {/,/^};/p' "$work/nodegate.conf" >"$work/kube.conf"
cat >>"$work/kube.conf" <<CONF
api = { listen = "127.0.0.1:9080"; };
health = { interval_ms = 1000; timeout_ms = 500; rise = 2; fall = 2; };
state_dir = "$work/state";
pools = ( { name = "default"; cidrs = [ "10.100.0.100/30", "fd00:100::200/126" ]; } );
kubernetes = { enabled = true; server = "https://127.0.0.1:$fake_port"; ca_file = "$work/ca.crt";
               token_file = "$work/kube-token"; class = "nodegate.io/lb"; };
CONF
e2e_start "$work/kube.conf" || exit 1
# ingress NAME: the Service's status addresses, space separated.
ingress() {
  ip netns exec "$lb" curl -sS --max-time 5 --cacert "$work/ca.crt" \
    "https://127.0.0.1:$fake_port/_fake/objects/services/shop/$1" 2>/dev/null |
    jq -r '[((.status.loadBalancer.ingress // [])[] | .ip)] | join(" ")' 2>/dev/null
}
for ((i = 0; i < 100; i++)); do
  [[ "$(ingress dual)" == *" "* && -n "$(ingress six)" ]] && break
  sleep 0.2
done
read -r dual6 dual4 <<<"$(ingress dual)"
six="$(ingress six)"
if [[ "$dual6" == fd00:100::20[0-3] && "$dual4" == 10.100.0.10[0-3] && "$six" == fd00:100::20[0-3] && "$six" != "$dual6" ]]; then
  pass "(h) status: shop/dual [$dual6, $dual4] (IPv6 first), shop/six [$six]"
else
  fail "(h) status: shop/dual '$(ingress dual)', shop/six '$six'"
fi
ok=0
for target in "[$dual6]" "$dual4" "[$six]"; do
  for ((i = 0; i < 20; i++)); do  # the first requests may find a node not yet probed up
    got="$(ip netns exec "$client" curl -s -g --max-time 2 "http://$target/whoami")"
    [[ "$got" =~ ^n[123]$ ]] && break
    sleep 0.25
  done
  [[ "$got" =~ ^n[123]$ ]] && ok=$((ok + 1)) || say "(h) http://$target/whoami: '$got'"
done
((ok == 3)) && pass "(h) HTTP through all three Kubernetes addresses (two families)" \
  || fail "(h) only $ok of 3 Kubernetes addresses served"

stop_nodegate
