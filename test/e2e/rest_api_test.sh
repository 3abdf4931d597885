#!/usr/bin/env bash
# End-to-end: load balancers declared through the cloud-provider REST API carry real
# traffic, survive a restart with their address, and go away when deleted.
#
# Usage: test/e2e/rest_api_test.sh <nodegate-binary> <ngctl-binary> <repo-root>
#
# The demo topology and config, plus a VIP pool 10.100.0.120/30 and an API token. Checks:
#   (a) `ngctl apply` without the token is refused (401) and changes nothing;
#   (b) `ngctl apply -f lb.json` with the token: the box allocates 10.100.0.120 from the
#       pool and HTTP to it reaches the nodes (the VIP is answered for ARP and balanced);
#   (c) a bad request is refused with 400 naming the field;
#   (d) after a restart the load balancer is still there with the same address, and
#       serves traffic;
#   (f) while 200 long-lived TCP connections run through it, its node set changes (n3
#       leaves, PUT .../nodes): no connection is reset - those on n1/n2 and even those on
#       n3 keep their node (the flow table holds it) - and new connections avoid n3;
#   (e) `ngctl delete` removes it: GET 404, and the address no longer answers.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_rest_api "ngr$$-" ngctl "$@"

readonly LB_VIP=10.100.0.120
e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
printf 'tok-%s\n' "$RANDOM$RANDOM" >"$work/token"
sed -i -E "s|^api = .*|api = { listen = \"127.0.0.1:9080\"; token_file = \"$work/token\"; };|" "$work/nodegate.conf"
printf 'pools = ( { name = "default"; cidrs = [ "%s/30" ]; } );\n' "$LB_VIP" >>"$work/nodegate.conf"
cat >"$work/lb.json" <<JSON
{"namespace": "shop", "name": "web",
 "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": $NG_NODE_PORT},
           {"name": "sctp", "protocol": "SCTP", "port": 9, "nodePort": 31009}],
 "nodes": [{"name": "n1", "address": "${NG_NODE_ADDRS[0]}"}, {"name": "n2", "address": "${NG_NODE_ADDRS[1]}"},
           {"name": "n3", "address": "${NG_NODE_ADDRS[2]}"}]}
JSON
e2e_start "$work/nodegate.conf" || exit 1

ngctl_() { ip netns exec "$lb" "$ngctl" --api "$NG_API" "$@"; }
# served N: answers of N requests to the load balancer's VIP, one per line.
served() {
  ip netns exec "$client" bash -c '
    for ((i = 0; i < $2; i++)); do curl -s --max-time 2 --fail "http://$1/whoami" || echo "error:$?"; done' \
    _ "$LB_VIP" "$1"
}

# (a) no token.
out="$(ngctl_ apply -f "$work/lb.json" 2>&1)"; rc=$?
if ((rc != 0)) && [[ "$out" == *401* ]] && [[ "$(api_code /v1/loadbalancers/shop/web)" == 404 ]]; then
  pass "(a) apply without the token refused: $(head -n 1 <<<"$out")"
else
  fail "(a) apply without the token: exit $rc, '$out'"
fi

# (b) with the token.
out="$(ngctl_ --token-file "$work/token" apply -f "$work/lb.json" 2>&1)"; rc=$?
answers="$(served 30)"
if ((rc == 0)) && [[ "$out" == *"$LB_VIP"* ]] && (($(grep -cxE 'n[123]' <<<"$answers") == 30)); then
  pass "(b) apply allocated $LB_VIP; 30/30 requests served ($(sort <<<"$answers" | uniq -c | awk '{printf "%s=%s ", $2, $1}'))"
else
  fail "(b) apply: exit $rc, '$out'; answers: $(sort <<<"$answers" | uniq -c | tr '\n' ' ')"
fi
status="$(api /v1/loadbalancers/shop/web)"
if python3 -c '
import json, sys
s = json.loads(sys.argv[1])
ports = s["ingress"][0]["ports"]
assert s["ingress"][0]["ipMode"] == "Proxy"
assert "error" not in ports[0] and "SCTP is not supported" in ports[1]["error"], ports
' "$status" 2>"$work/status.err"; then
  pass "(b) GET shows ipMode Proxy and the SCTP port's error"
else
  fail "(b) GET: $(cat "$work/status.err") ${status:0:400}"
fi

# (c) a bad request.
bad="$(ip netns exec "$lb" curl -s -w ' %{http_code}' -X PUT -H "Authorization: Bearer $(cat "$work/token")" \
  -d '{"ports": [{"port": 80, "nodePort": 70000}]}' "$NG_API/v1/loadbalancers/shop/bad")"
if [[ "$bad" == *"ports[0].nodePort: 70000 is not an integer in 0..65535"*" 400" ]]; then
  pass "(c) bad request: 400 naming ports[0].nodePort"
else
  fail "(c) bad request answer: $bad"
fi

# (d) restart.
stop_nodegate
checkpoint
[[ "$ng_rc" == 0 ]] || fail "(d) nodegate exit status $ng_rc on SIGTERM"
e2e_start "$work/nodegate.conf" || exit 1
ip="$(api /v1/loadbalancers/shop/web | python3 -c 'import json, sys; print(json.load(sys.stdin)["ingress"][0]["ip"])' 2>/dev/null)"
# The restarted box knows no neighbours yet; the client, whose ARP cache still holds the
# VIP, sends it nothing that would teach the box its MAC until the box asks: the first
# SYN-ACK waits for that ARP and the client's SYN retransmission (about 1 s).
for ((t = 0; t < 10; t++)); do
  ip netns exec "$client" curl -s --max-time 3 --fail -o /dev/null "http://$LB_VIP/whoami" && break
done
answers="$(served 10)"
if [[ "$ip" == "$LB_VIP" ]] && (($(grep -cxE 'n[123]' <<<"$answers") == 10)) &&
   grep -q "1 load balancers restored" "$work/nodegate.log"; then
  pass "(d) after a restart: shop/web still at $ip and serving (10/10)"
else
  fail "(d) after a restart: ip '$ip', answers: $(tr '\n' ' ' <<<"$answers")"
fi

# (f) node set change under 200 long-lived connections.
# hold.py VIP N SECONDS: N connections each GET /big.bin and read it slowly (16 KiB every
# 0.5 s) for SECONDS; prints one JSON line: per node, connections, resets, other errors.
cat >"$work/hold.py" <<'PY'
import json, selectors, socket, sys, time
vip, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conns, result = [], {}
for i in range(n):
    s = socket.create_connection((vip, 80), timeout=5)
    s.sendall(b"GET /big.bin HTTP/1.0\r\nHost: vip\r\n\r\n")
    conns.append({"sock": s, "head": b"", "node": None, "bytes": 0, "error": None})
end = time.monotonic() + seconds
while time.monotonic() < end:
    for c in conns:
        if c["error"]:
            continue
        try:
            c["sock"].settimeout(0.05)
            data = c["sock"].recv(16384)
            if not data:
                c["error"] = "eof"
                continue
            c["bytes"] += len(data)
            if c["node"] is None:
                c["head"] += data
                for line in c["head"].split(b"\r\n"):
                    if line.lower().startswith(b"x-node:"):
                        c["node"] = line.split(b":", 1)[1].strip().decode()
        except socket.timeout:
            pass
        except ConnectionResetError:
            c["error"] = "reset"
        except OSError as e:
            c["error"] = type(e).__name__
    time.sleep(0.5)
for c in conns:
    r = result.setdefault(c["node"] or "?", {"conns": 0, "resets": 0, "errors": 0, "min_bytes": None})
    r["conns"] += 1
    r["resets"] += c["error"] == "reset"
    r["errors"] += c["error"] not in (None, "reset")
    r["min_bytes"] = c["bytes"] if r["min_bytes"] is None else min(r["min_bytes"], c["bytes"])
    c["sock"].close()
print(json.dumps(result, sort_keys=True))
PY
ip netns exec "$client" python3 "$work/hold.py" "$LB_VIP" 200 10 >"$work/hold.json" 2>"$work/hold.err" &
hold_pid=$!
sleep 4
nodes_body="{\"nodes\": [{\"name\": \"n1\", \"address\": \"${NG_NODE_ADDRS[0]}\"}, {\"name\": \"n2\", \"address\": \"${NG_NODE_ADDRS[1]}\"}]}"
put_code="$(ip netns exec "$lb" curl -s -o "$work/nodes.out" -w '%{http_code}' -X PUT \
  -H "Authorization: Bearer $(cat "$work/token")" -d "$nodes_body" "$NG_API/v1/loadbalancers/shop/web/nodes")"
waiting=1; wait "$hold_pid"; hold_rc=$?; waiting=0
checkpoint
answers="$(served 30)"
if verdict="$(python3 - "$work/hold.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
total = sum(v["conns"] for v in r.values())
bad = {k: v for k, v in r.items() if v["resets"] or v["errors"] or not v["min_bytes"] or k == "?"}
print(f"{total} connections: " + ", ".join(f"{k} {v['conns']} (resets {v['resets']}, errors {v['errors']}, "
                                           f"min {v['min_bytes']} B read)" for k, v in sorted(r.items())))
sys.exit(1 if bad or total != 200 else 0)
PY
)" && ((hold_rc == 0)) && [[ "$put_code" == 200 ]] && (($(grep -cx n3 <<<"$answers") == 0)) &&
   (($(grep -cxE 'n[12]' <<<"$answers") == 30)); then
  pass "(f) nodes n1,n2,n3 -> n1,n2 under load: $verdict; 30 new requests all on n1/n2"
else
  fail "(f) node set change: PUT $put_code, hold exit $hold_rc ($(head -c 300 "$work/hold.err")), $verdict; new: $(sort <<<"$answers" | uniq -c | tr '\n' ' ')"
fi

# (e) delete.
out="$(ngctl_ --token-file "$work/token" delete shop/web 2>&1)"; rc=$?
code="$(api_code /v1/loadbalancers/shop/web)"
after="$(ip netns exec "$client" curl -s --max-time 2 "http://$LB_VIP/whoami"; echo " rc=$?")"
if ((rc == 0)) && [[ "$code" == 404 ]] && [[ "$after" != *n[123]* ]]; then
  pass "(e) deleted: GET 404, $LB_VIP no longer answers ($after)"
else
  fail "(e) delete: exit $rc '$out', GET $code, VIP answer '$after'"
fi

if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "nodegate exited 0 on SIGTERM"; else fail "nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0
