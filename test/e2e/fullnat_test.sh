#!/usr/bin/env bash
# End-to-end: real HTTP over TCP through NodeGate in fullnat mode, in network namespaces.
#
# Usage: test/e2e/fullnat_test.sh <nodegate-binary> <repo-root>
#
# Builds the scripts/netns.sh topology under a prefix unique to this run, starts the
# binary in the box's namespace with conf/demo.conf, and checks:
#   (a) 300 HTTP requests to the VIP all succeed, each node serves >= 20% of them;
#   (b) a 50 MiB download through the VIP arrives with the right sha256;
#   (c) /v1/stats counts new_flows >= 301 and to_nodes, to_clients > 0;
#   (d) nodegate is still alive (process and /healthz);
#   (f) SIGHUP with n3 removed from the file: generation 2, new connections avoid n3;
#   (g) SIGHUP with a broken file: rejected with its error, generation 2 keeps serving;
#   (e) it stops on SIGTERM with exit 0;
# and always tears down, then checks that no namespace and no process of the run is left.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_fullnat "nge2e$$-" "$@"

readonly REQUESTS=300

e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
e2e_start "$work/nodegate.conf" || exit 1

# (a) 300 requests, one TCP connection each, all inside the client namespace. Bounded:
# stops after 150 s or 15 failures in a row (a dead data plane would take 25 min).
say "(a) $REQUESTS requests to http://$NG_VIP/whoami"
e2e_requests "$REQUESTS" "$work/requests.txt"
checkpoint
e2e_check_requests "(a)" "$work/requests.txt" "$REQUESTS"

# (b) 50 MiB through the VIP.
e2e_big_download "(b)"

# (c) counters.
stats="$(api /v1/stats)"
printf '%s\n' "$stats" >"$work/stats.json"
if verdict="$(python3 - "$work/stats.json" "$((REQUESTS + 1))" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    c = s["counters"]
    nf, tn, tc = int(c["new_flows"]), int(c["to_nodes"]), int(c["to_clients"])
except Exception as e:  # noqa: BLE001 - any malformed answer is a failure
    print(f"bad /v1/stats answer: {e!r}")
    sys.exit(1)
msg = f"new_flows={nf} to_nodes={tn} to_clients={tc} nonzero drops={json.dumps({k: v for k, v in s.get('drops', {}).items() if v})}"
print(msg)
sys.exit(0 if nf >= int(sys.argv[2]) and tn > 0 and tc > 0 else 1)
PY
)"; then
  pass "(c) /v1/stats: $verdict"
else
  fail "(c) /v1/stats (want new_flows >= $((REQUESTS + 1)), to_nodes > 0, to_clients > 0): $verdict; raw: ${stats:0:300}"
fi

# (d) still alive.
if kill -0 "$ng_pid" 2>/dev/null && [[ "$(api_code /healthz)" == 200 ]]; then
  pass "(d) nodegate alive, /healthz 200"
else
  fail "(d) nodegate alive (process or /healthz gone)"
fi

# (f) live reload: n3 leaves the config, SIGHUP, and new connections stop going to it
# while the box keeps serving (generation 2; DESIGN.md sec. 5).
say "(f) reload without n3 (SIGHUP)"
sed -E -e 's/(name = "n2"; address = "10\.200\.0\.12"; \}),/\1/' -e '/name = "n3"/d' \
  "$work/nodegate.conf" >"$work/nodegate.conf.new" && mv "$work/nodegate.conf.new" "$work/nodegate.conf"
kill -HUP "$ng_pid" 2>/dev/null
generation=""
for ((i = 0; i < 50; i++)); do
  generation="$(api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)"
  [[ "$generation" == 2 ]] && break
  sleep 0.1
done
step ip netns exec "$client" bash -c '
  for ((i = 0; i < 60; i++)); do curl -s --max-time 5 --fail "http://$1/whoami" || echo "error:$?"; done' \
  _ "$NG_VIP" >"$work/reload.txt" 2>&1
checkpoint
after="n1=$(grep -cx n1 "$work/reload.txt") n2=$(grep -cx n2 "$work/reload.txt") n3=$(grep -cx n3 "$work/reload.txt")"
if [[ "$generation" == 2 ]] && (($(grep -cxE 'n1|n2' "$work/reload.txt") == 60)); then
  pass "(f) generation 2 after SIGHUP; 60/60 new connections on n1/n2 ($after)"
else
  fail "(f) after SIGHUP: generation '$generation' (want 2); $after; $(grep -c error "$work/reload.txt") errors"
fi

# (g) a broken file on SIGHUP is rejected and the running generation keeps serving.
say "(g) reload with a broken config (SIGHUP)"
sed -E 's/node_port = 30080;/node_port = 70000;/' "$work/nodegate.conf" >"$work/nodegate.conf.new" &&
  mv "$work/nodegate.conf.new" "$work/nodegate.conf"
kill -HUP "$ng_pid" 2>/dev/null
sleep 1
generation="$(api /v1/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])' 2>/dev/null)"
body="$(ip netns exec "$client" curl -s --max-time 5 --fail "http://$NG_VIP/whoami")"
if [[ "$generation" == 2 ]] && [[ "$body" == n1 || "$body" == n2 ]] &&
   grep -q "reload (SIGHUP) rejected.*node_port: 70000 is outside 1..65535" "$work/nodegate.log"; then
  pass "(g) broken reload rejected with its error, generation 2 still serving ($body)"
else
  fail "(g) broken reload: generation '$generation', answer '$body', log: $(grep -m1 'reload' "$work/nodegate.log")"
fi

# (e) clean stop.
if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "(e) nodegate exited 0 on SIGTERM"; else fail "(e) nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0   # the EXIT trap tears down and reports
