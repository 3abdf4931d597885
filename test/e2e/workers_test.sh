#!/usr/bin/env bash
# End-to-end: two worker lcores, full-NAT HTTP through NodeGate, in network namespaces.
#
# Usage: test/e2e/workers_test.sh <nodegate-binary> <repo-root>
#
# conf/demo.conf with `workers = [ 1, 2 ]` and both ports on net_af_packet with
# `qpairs=2`: each worker reads its own AF_PACKET socket per port and the kernel's fanout
# hash spreads frames over them. That hash cannot be predicted (a per-boot secret) and
# its rollover flag moves a busy flow's frames to the other socket, so the box steers
# by ownership: a client flow belongs to the worker its flow hash names, a reply to the
# worker its SNAT port names, and frames that land elsewhere go to the owner through
# the redirect rings (docs/ARCHITECTURE.md, "Several workers"). The three lcores float over the CPUs
# this script may use (--lcores), so two CPUs are enough; idle workers sleep. Checks:
#   (a) 300 HTTP requests to the VIP all succeed;
#   (b) both workers created flows (/v1/status workers[].new_flows), replies took the
#       redirect rings (redirected = redirect_received > 0) and no frame missed its flow
#       (no_flow = 0); a full ring (redirect_full, an owner off its CPU: the lcores share
#       CPUs here) may drop at most 0.5% of the redirected frames;
#   (c) a 50 MiB download through the VIP arrives with the right sha256;
#   (d) /metrics has the per-worker redirect counters;
#   (e) it stops on SIGTERM with exit 0;
# and always tears down, then checks that no namespace and no process of the run is left.
# Needs root (exit 77 = skipped otherwise). Bounded: NG_E2E_TIMEOUT seconds (default 480).
# shellcheck source-path=SCRIPTDIR/../.. disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -uo pipefail

# shellcheck source=test/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_main e2e_workers "ngmw$$-" "$@"

readonly REQUESTS=300

e2e_up || exit 1
e2e_demo_conf "$work/nodegate.conf"
# The CPUs this run may use ("0-1", "0,2", ...): lcores 0 (control), 1 and 2 (workers)
# float over them.
cpus="$(taskset -pc $$ | sed -E 's/.*: *//')"
sed -i -E \
  -e 's/^( *workers = )\[ 1 \];/\1[ 1, 2 ];/' \
  -e "s/^( *eal = \[ .*)\" \];/\1\", \"--lcores=(0-2)@(${cpus})\" ];/" \
  -e 's/(device = "net_af_packet[01],iface=(ext0|int0))"/\1,qpairs=2"/' \
  "$work/nodegate.conf"
if ! grep -q 'workers = \[ 1, 2 \]' "$work/nodegate.conf" || (($(grep -c 'qpairs=2' "$work/nodegate.conf") != 2)) ||
   ! grep -q -- '--lcores=' "$work/nodegate.conf"; then
  fail "config: conf/demo.conf no longer has the lines this test rewrites"
  exit 1
fi
e2e_start "$work/nodegate.conf" || exit 1
if grep -q "replies steered by SNAT port" "$work/nodegate.log"; then
  pass "2 workers, replies steered by SNAT port ($(grep -o 'workers: .*' "$work/nodegate.log" | head -1))"
else
  fail "2 workers: no steering line in the log"
fi

# (a) 300 requests, one TCP connection each. Bounded: 150 s or 15 failures in a row.
say "(a) $REQUESTS requests to http://$NG_VIP/whoami"
e2e_requests "$REQUESTS" "$work/requests.txt"
checkpoint
ok="$(grep -cxE 'n1|n2|n3' "$work/requests.txt")"
spread="n1=$(grep -cx n1 "$work/requests.txt") n2=$(grep -cx n2 "$work/requests.txt") n3=$(grep -cx n3 "$work/requests.txt")"
if ((ok == REQUESTS)); then
  pass "(a) $REQUESTS/$REQUESTS requests succeeded with 2 workers ($spread)"
else
  why="$(grep -vxE 'n[123]' "$work/requests.txt" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep=", "}')"
  fail "(a) $((REQUESTS - ok)) of $REQUESTS requests failed or were not run ($spread; $why)"
fi

# (c) 50 MiB through the VIP (before (b), so its segments count too).
e2e_big_download "(c)"

# (b) per-worker counters.
api /v1/status >"$work/status.json"
api /v1/stats >"$work/stats.json"
if verdict="$(python3 - "$work/status.json" "$work/stats.json" "$REQUESTS" <<'PY'
import json, sys
try:
    workers = json.load(open(sys.argv[1]))["workers"]
    stats = json.load(open(sys.argv[2]))
    c, d = stats["counters"], stats["drops"]
    flows = [int(w["new_flows"]) for w in workers]
    redirected, received = int(c["redirected"]), int(c["redirect_received"])
    full, no_flow = int(d["redirect_full"]), int(d["no_flow"])
except Exception as e:  # noqa: BLE001 - any malformed answer is a failure
    print(f"bad /v1/status or /v1/stats answer: {e!r}")
    sys.exit(1)
msg = (f"workers={len(workers)} new_flows per worker={flows} redirected={redirected} "
       f"redirect_received={received} redirect_full={full} no_flow={no_flow}")
print(msg)
good = (len(workers) == 2 and all(f > 0 for f in flows) and sum(flows) >= int(sys.argv[3])
        and redirected > 0 and redirected == received and full * 200 <= redirected and no_flow == 0)
sys.exit(0 if good else 1)
PY
)"; then
  pass "(b) $verdict"
else
  fail "(b) want 2 workers with flows each, redirected == redirect_received > 0, redirect_full <= 0.5%, no_flow 0: $verdict"
fi

# (d) /metrics.
metrics="$(api /metrics)"
if grep -q '^nodegate_redirected_total{worker="1"}' <<<"$metrics" &&
   grep -q '^nodegate_redirect_received_total{worker="0"}' <<<"$metrics" &&
   grep -q '^nodegate_drops_total{reason="redirect_full"} [0-9]' <<<"$metrics"; then
  pass "(d) /metrics: per-worker redirect counters, redirect_full drops"
else
  fail "(d) /metrics lacks the redirect counters: $(grep -m3 redirect <<<"$metrics")"
fi

# (e) clean stop.
if kill -0 "$ng_pid" 2>/dev/null; then
  stop_nodegate
  checkpoint
  if [[ "$ng_rc" == 0 ]]; then pass "(e) nodegate exited 0 on SIGTERM"; else fail "(e) nodegate exit status $ng_rc on SIGTERM"; fi
fi
exit 0   # the EXIT trap tears down and reports
