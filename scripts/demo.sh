#!/usr/bin/env bash
# NodeGate demo: one box balancing real HTTP to three "nodes", all in network namespaces
# on this machine. Run as root on Debian 12 from a clone of the repository:
#
#   sudo scripts/demo.sh
#
# It installs the dependencies, builds nodegate, builds the topology (prefix ngdemo-, see
# scripts/netns.sh), starts nodegate with conf/demo.conf, sends 60 HTTP requests to the
# VIP 10.100.0.100 from the client namespace, downloads a 50 MiB file through it, shows
# the box's counters, then stops everything and removes what it created.
#
# Environment: BUILD_DIR (default build/), NODEGATE_BIN (use this binary, skip the build).
# shellcheck source-path=SCRIPTDIR disable=SC2317,SC2016  # trap-invoked functions; bash -c '...'
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/netns.sh"

readonly P="ngdemo-"
readonly REQUESTS=60
build_dir="${BUILD_DIR:-$repo/build}"
client="${P}client"
lb="${P}lb"
work=""
ng_pid=""
ok=1

if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B="" G="" R="" D="" N=""; fi
title() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
info() { printf '    %s\n' "$*"; }
good() { printf '    %s%s%s\n' "$G" "$*" "$N"; }
bad() { printf '    %s%s%s\n' "$R" "$*" "$N"; ok=0; }
api() { ng_api "$P" "$1"; }

show_log() {
  printf '    %s---- nodegate log (last 40 lines) ----%s\n' "$D" "$N"
  tail -n 40 "$work/nodegate.log" 2>/dev/null | sed 's/^/    /'
  printf '    %s---- end of log ----%s\n' "$D" "$N"
}

cleanup() {
  local rc=$? i
  trap - EXIT
  trap '' INT TERM   # finish tearing down; every step below is bounded
  title "Cleaning up"
  if [[ -n "$ng_pid" ]]; then
    kill -TERM "$ng_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$ng_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$ng_pid" 2>/dev/null; then
      bad "nodegate still running 10 s after SIGTERM; killing it"
      kill -KILL "$ng_pid" 2>/dev/null || true
    fi
    local ng_rc=0
    wait "$ng_pid" 2>/dev/null || ng_rc=$?
    if ((ng_rc == 0)); then info "nodegate stopped (exit 0)"; else bad "nodegate exit status $ng_rc"; fi
  fi
  ((ok == 1 && rc == 0)) || [[ -z "$work" ]] || show_log
  ng_netns_down "$P" || bad "could not remove every ${P}* namespace (scripts/netns.sh down $P)"
  info "namespaces ${P}* removed"
  [[ -n "$work" ]] && rm -rf "$work"
  if ((ok == 1 && rc == 0)); then
    printf '\n%sDemo finished: all good.%s\n' "$G$B" "$N"
    exit 0
  fi
  printf '\n%sDemo finished with problems (see above).%s\n' "$R$B" "$N"
  exit $((rc == 0 ? 1 : rc))
}

if ((EUID != 0)); then
  echo "The demo builds network namespaces: run it as root (sudo $0)." >&2
  exit 1
fi

printf '%sNodeGate demo%s: client -> VIP %s:80 -> nodes n1 n2 n3 :%s (fullnat)\n' \
  "$B" "$N" "$NG_VIP" "$NG_NODE_PORT"

title "Dependencies"
"$repo/scripts/install-deps.sh" | sed 's/^/    /'

if [[ -n "${NODEGATE_BIN:-}" ]]; then
  nodegate="$(realpath -- "$NODEGATE_BIN")"
  title "Using $nodegate (NODEGATE_BIN; no build)"
else
  title "Building nodegate in $build_dir"
  mkdir -p "$build_dir"
  t0=$SECONDS
  if ! "$repo/scripts/build.sh" "$build_dir" nodegate ngctl >"$build_dir/demo-build.log" 2>&1; then
    tail -n 40 "$build_dir/demo-build.log" | sed 's/^/    /'
    echo "Build failed; full log: $build_dir/demo-build.log" >&2
    exit 1
  fi
  nodegate="$build_dir/control/nodegate"
  ngctl="$build_dir/control/ngctl/ngctl"
  info "done in $((SECONDS - t0)) s (log: $build_dir/demo-build.log)"
fi
[[ -x "$nodegate" ]] || { echo "no executable nodegate at $nodegate" >&2; exit 1; }

# From here on, whatever happens, the EXIT trap stops nodegate and removes the topology.
work="$(mktemp -d /tmp/ngdemo.XXXXXX)"
trap cleanup EXIT
trap 'exit 130' INT TERM

title "Topology"
if ip netns list | awk '{print $1}' | grep -q "^${P}"; then
  info "removing ${P}* namespaces left by an earlier run"
  ng_netns_down "$P"
fi
ng_netns_up "$P" >"$work/netns.log" 2>&1 || { cat "$work/netns.log"; exit 1; }
info "${P}client  eth0 $NG_CLIENT_ADDR/24, default via $NG_GATEWAY_ADDR"
info "${P}lb      ext0 + int0, no kernel addresses: NodeGate owns them (net_af_packet)"
info "${P}lb      mgmt0 $NG_LB_MGMT_ADDR/24: the kernel's management address, health probes leave here"
info "${P}sw      bridge br0"
for i in "${!NG_NODE_NAMES[@]}"; do
  info "${P}${NG_NODE_NAMES[$i]}      eth0 ${NG_NODE_ADDRS[$i]}/24, HTTP on :$NG_NODE_PORT, kube-proxy health on :$NG_KUBE_PROXY_PORT"
done

title "Starting nodegate --config conf/demo.conf"
ip netns exec "$lb" "$nodegate" --config "$repo/conf/demo.conf" </dev/null >"$work/nodegate.log" 2>&1 &
ng_pid=$!
started=$SECONDS
ready_rc=0
ng_wait_ready "$P" "$ng_pid" 30 || ready_rc=$?
if ((ready_rc == 1)); then
  bad "not ready after 30 s (GET $NG_API/readyz in $lb)"
  exit 1
elif ((ready_rc == 2)); then
  ng_rc=0; wait "$ng_pid" || ng_rc=$?; ng_pid=""
  bad "nodegate exited (status $ng_rc) before it was ready"
  exit 1
fi
good "ready after $((SECONDS - started)) s (pid $ng_pid, API $NG_API in $lb)"

title "$REQUESTS requests: curl http://$NG_VIP/whoami from $client"
# One loop inside the client namespace; each request a new TCP connection. Bounded:
# 5 s per request, and it gives up after 10 failures in a row.
ip netns exec "$client" bash -c '
  streak=0
  for ((i = 0; i < $1; i++)); do
    if ((streak >= 10)); then echo "notrun"; continue; fi
    if body=$(curl -s --fail --max-time 5 "http://$2/whoami"); then echo "$body"; streak=0
    else echo "error:$?"; streak=$((streak + 1)); fi
  done' _ "$REQUESTS" "$NG_VIP" >"$work/requests.txt" 2>&1 || true
bar_char='#'
[[ "$(locale charmap 2>/dev/null)" == UTF-8 ]] && bar_char='█'
for n in "${NG_NODE_NAMES[@]}"; do
  c="$(grep -cx "$n" "$work/requests.txt" || true)"
  bar=""
  for ((j = 0; j < c; j++)); do bar+="$bar_char"; done
  printf '    %s  %3d  %s\n' "$n" "$c" "$bar"
done
failed="$(grep -cvx 'n[123]' "$work/requests.txt" || true)"
if ((failed == 0)); then
  good "all $REQUESTS answered"
else
  bad "$failed of $REQUESTS failed: $(grep -vx 'n[123]' "$work/requests.txt" | sort | uniq -c | awk '{printf "%s%s x %s", s, $1, $2; s=", "}')"
fi

title "Download big.bin (50 MiB) through the VIP"
want="$(ng_netns_big_sha256 "$P")"
stats_line="$(ip netns exec "$client" curl -s --fail --max-time 120 -o "$work/big.bin" \
  -w '%{size_download} %{time_total} %{speed_download}' "http://$NG_VIP/big.bin")" || true
read -r size secs speed <<<"${stats_line:-0 0 0}"
got="$(sha256sum "$work/big.bin" 2>/dev/null | cut -d' ' -f1 || true)"
rm -f "$work/big.bin"
info "$(awk -v b="$size" -v t="$secs" -v s="$speed" \
  'BEGIN { printf "%d bytes in %.2f s (%.0f MiB/s)", b, t, s / 1048576 }')"
if [[ -n "$got" && "$got" == "$want" ]]; then
  good "sha256 ok: $got"
else
  bad "sha256 mismatch: got '${got:-nothing}', want $want"
fi

title "Counters: GET /v1/stats (drop reasons with a count of 0 left out)"
if stats="$(api /v1/stats)" && [[ -n "$stats" ]]; then
  # Pretty JSON; of the drop reasons, only those that happened.
  python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
if isinstance(s.get("drops"), dict):
    s["drops"] = {k: v for k, v in s["drops"].items() if v}
print(json.dumps(s, indent=4))' <<<"$stats" 2>/dev/null | sed 's/^/    /' || info "$stats"
else
  bad "no answer from $NG_API/v1/stats"
fi

title "VIP table: ngctl list (health from the box's own probes)"
if [[ -x "${ngctl:-}" ]]; then
  ip netns exec "$lb" "$ngctl" --api "$NG_API" list 2>&1 | sed 's/^/    /' || bad "ngctl list failed"
else
  info "(ngctl not built: NODEGATE_BIN was given)"
fi

((ok == 1)) || exit 1
exit 0
