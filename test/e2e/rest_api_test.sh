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
#   (e) `ngctl delete` removes it: GET 404, and the address no longer answers.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2016  # bash -c '...'
set -uo pipefail

if (($# != 3)); then
  echo "usage: $0 <nodegate-binary> <ngctl-binary> <repo-root>" >&2
  exit 2
fi
nodegate="$(realpath -- "$1")"
ngctl="$(realpath -- "$2")"
repo="$(realpath -- "$3")"
if ((EUID != 0)); then
  echo "SKIP: e2e_rest_api needs root (network namespaces)"
  exit 77
fi
# shellcheck source=scripts/netns.sh
source "$repo/scripts/netns.sh"
# shellcheck source=test/e2e/lib.sh
source "$repo/test/e2e/lib.sh"
e2e_begin e2e_rest_api "ngr$$-"

readonly LB_VIP=10.100.0.120
[[ -x "$nodegate" && -x "$ngctl" ]] || { fail "binaries not executable: $nodegate $ngctl"; exit 1; }
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
answers="$(served 10)"
if [[ "$ip" == "$LB_VIP" ]] && (($(grep -cxE 'n[123]' <<<"$answers") == 10)) &&
   grep -q "1 load balancers restored" "$work/nodegate.log"; then
  pass "(d) after a restart: shop/web still at $ip and serving (10/10)"
else
  fail "(d) after a restart: ip '$ip', answers: $(tr '\n' ' ' <<<"$answers")"
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
