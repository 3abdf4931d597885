#!/usr/bin/env bash
# NodeGate data-plane throughput, as a ratio to dpdk-testpmd on the same input in the same run.
#
#   scripts/bench-dataplane.sh [--seconds 10] [--warmup 3] [--build DIR]
#                              [--flows 4096] [--packets-per-flow 8] [--mode fullnat|tunnel]
#                              [--rounds 1] [--only testpmd|nodegate] [--api-port 9180] [--keep]
#                              [--testpmd-mode io|5tswap|macswap] [--workers 1]
#
# Both sides read the same pcap (scripts/mkpcap.py: TCP client -> VIP 10.100.0.100:80, SYNs
# first, then ACKs round-robin) replayed forever by net_pcap (rx_pcap=FILE,infinite_rx=1),
# and write to net_null with RX disabled (no-rx=1), one after the other, one forwarding lcore
# each (lcore 1; lcore 0 is testpmd's main / NodeGate's control thread):
#   (a) dpdk-testpmd --forward-mode=io --nb-cores=1 --stats-period 1: the rate is port 1's
#       (--testpmd-mode 5tswap swaps L2-L4 addresses of every frame: a reference that
#       touches the headers the way a NAT does, without any lookup)
#       Tx-pps (frames handed to net_null), one sample per second;
#   (b) nodegate --config GENERATED: external port = the same net_pcap device, internal port =
#       net_null; the rate is the per-second increase of counters.to_nodes (client -> node
#       frames rewritten and sent) read from GET /v1/stats once per second.
# --workers N (default 1): N forwarding lcores on each side, each with its own RX/TX queue
# pair and its own pcap of --flows flows (scripts/mkpcap.py --worker w --workers N: the
# flows NodeGate's worker w owns, as a NIC's RSS would hand them out, so no frame has to
# hop between workers; the run checks that the `redirected` counter stays 0), read by
# RX queue w of one net_pcap device (rx_pcap given N times). testpmd runs
# --rxq=N --txq=N --nb-cores=N. With N >= the machine's cores the lcores are pinned one per
# core and the main lcore (testpmd's stats printer, NodeGate's control thread, both mostly
# asleep) floats over all of them (--lcores=0@(0-K),1@0,2@1,...). The result is then both
# totals, their ratio and the per-worker Mpps.
# Each side: the first --warmup seconds are discarded, the reported figure is the median of
# the next --seconds one-second rates. Prints both Mpps, the ratio nodegate/testpmd and the
# drop counters; exits non-zero with a message if a side does not start or forwards nothing.
# --rounds N alternates the two sides N times (testpmd, nodegate, testpmd, ...) and reports
# the medians and the median of the per-round ratios: on a shared machine the noise moves
# slowly, so pairs measured back to back give a steadier ratio than one long run.
#
# Needs root (hugepages; nodegate runs in its own network namespace so that nothing it
# sends, health probes included, can leave the machine) and 2 cores. Uses 2 MB hugepages
# (raises nr_hugepages to 512 when lower, never lowers it) with --huge-unlink, so no
# hugepage files survive even a crash. Every process runs under `timeout`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=10
WARMUP=3
BUILD_DIR="$REPO/build"
FLOWS=4096
PACKETS_PER_FLOW=8
MODE=fullnat
ONLY=both
TESTPMD_MODE=io
ROUNDS=1
WORKERS=1
API_PORT=9180
KEEP=0

MIN_HUGEPAGES=512          # what we make sure the system has (2 MB pages)
NEED_FREE_HUGEPAGES=320    # what one side needs free: ~640 MB (mempool + flow table)
PREFIX_TESTPMD=ngbench-testpmd
PREFIX_NODEGATE=ngbench
# net_pcap names its ports 02:70:63:61:70:<n> ("pcap", n = pcap devices created before it
# in the process); the external port is the first, so frames are addressed to it.
PCAP_PORT_MAC=02:70:63:61:70:00
START_TIMEOUT=60           # seconds a side may take to come up (EAL, pcap preload)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench-dataplane: $*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --seconds) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --build) BUILD_DIR=${2:?}; shift 2 ;;
    --flows) FLOWS=${2:?}; shift 2 ;;
    --packets-per-flow) PACKETS_PER_FLOW=${2:?}; shift 2 ;;
    --mode) MODE=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --testpmd-mode) TESTPMD_MODE=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --api-port) API_PORT=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 600 ]] || die "--seconds must be 1..600"
[[ $WARMUP =~ ^[0-9]+$ && $WARMUP -le 60 ]] || die "--warmup must be 0..60"
[[ $FLOWS =~ ^[0-9]+$ && $PACKETS_PER_FLOW =~ ^[0-9]+$ ]] || die "--flows/--packets-per-flow: integers"
[[ $MODE == fullnat || $MODE == tunnel ]] || die "--mode must be fullnat or tunnel"
[[ $ONLY == both || $ONLY == testpmd || $ONLY == nodegate ]] || die "--only must be testpmd or nodegate"
[[ $API_PORT =~ ^[0-9]+$ ]] || die "--api-port must be a port number"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 20 ]] || die "--rounds must be 1..20"
[[ $WORKERS =~ ^[0-9]+$ && $WORKERS -ge 1 && $WORKERS -le 8 ]] || die "--workers must be 1..8"
BUILD_DIR=$(realpath -m "$BUILD_DIR")

[[ $(id -u) -eq 0 ]] || die "needs root (hugepages, network namespace)"
(($(nproc) >= 2)) || die "needs at least 2 cores (lcore 0 main, lcore 1 forwarding)"
((WORKERS <= $(nproc))) || die "--workers $WORKERS: the machine has $(nproc) cores, one forwarding lcore per core at most"
command -v python3 >/dev/null || die "python3 not found"
if [[ $ONLY != nodegate ]]; then
  command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found (apt-get install dpdk)"
fi
if [[ $ONLY != testpmd ]]; then
  command -v ip >/dev/null || die "ip (iproute2) not found"
fi

WORK=$(mktemp -d /tmp/ngbench.XXXXXX)
NETNS="ngbench-$$"
PIDS=()          # processes we started (timeout wrappers), stopped by pid only
NETNS_MADE=0
STARTED_PREFIXES=()

# Stops one process we started: SIGTERM (testpmd and nodegate both shut down cleanly on it;
# `timeout` forwards it), then SIGKILL after 10 s.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench-dataplane: pid $pid ignored SIGTERM for 10 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid prefix
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if ((NETNS_MADE)); then ip netns del "$NETNS" 2>/dev/null || true; fi
  for prefix in "${STARTED_PREFIXES[@]}"; do
    rm -f /dev/hugepages/"${prefix}"map_* 2>/dev/null || true   # none with --huge-unlink
    rm -rf "/var/run/dpdk/$prefix"
  done
  if ((KEEP)); then echo "bench-dataplane: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_hugepages() {
  local nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages free
  [[ -w $nr ]] || die "no 2 MB hugepage support ($nr)"
  if (($(<"$nr") < MIN_HUGEPAGES)); then
    echo "$MIN_HUGEPAGES" >"$nr" || die "cannot set $nr to $MIN_HUGEPAGES"
  fi
  if ! mountpoint -q /dev/hugepages; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages || die "cannot mount hugetlbfs at /dev/hugepages"
  fi
  free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
  ((free >= NEED_FREE_HUGEPAGES)) ||
    die "only $free free 2 MB hugepages, need $NEED_FREE_HUGEPAGES (other DPDK processes running?)"
}

# A DPDK runtime directory that already exists belongs to a process we did not start
# (or to a crashed run): refuse rather than fight over it.
claim_prefix() {
  local prefix=$1
  if [[ -S /var/run/dpdk/$prefix/mp_socket ]] && fuser -s "/var/run/dpdk/$prefix/config" 2>/dev/null; then
    die "another DPDK process uses --file-prefix $prefix (/var/run/dpdk/$prefix)"
  fi
  STARTED_PREFIXES+=("$prefix")
}

# ---------------------------------------------------------------------------------------
# Helper: parses testpmd's periodic stats and samples NodeGate's /v1/stats (stdlib only).
cat >"$WORK/helper.py" <<'PY'
import json, re, statistics, sys, time, urllib.request

def summary(rates):
    return (f"median {statistics.median(rates) / 1e6:.3f} Mpps over {len(rates)} x 1 s "
            f"(min {min(rates) / 1e6:.3f}, max {max(rates) / 1e6:.3f})")

def testpmd(log, warmup, duration, result):
    """Port 1 (net_null) Tx-pps per stats period; testpmd's first period is a zero baseline."""
    port, section, tx = None, None, []
    final = {}
    for line in open(log, errors="replace"):
        m = re.search(r"(NIC|Forward) statistics for port (\d+)", line)
        if m:
            section, port = m.group(1), int(m.group(2))
            continue
        if section == "NIC" and port == 1:
            m = re.search(r"Tx-pps:\s+(\d+)", line)
            if m:
                tx.append(int(m.group(1)))
        for key, value in re.findall(r"(RX-missed|RX-errors|RX-nombuf|TX-errors|RX-dropped|TX-dropped):\s+(\d+)", line):
            final[f"port{port}.{key}"] = int(value)
    rates = tx[1 + warmup:1 + warmup + duration]
    if len(rates) < max(1, duration // 2):
        print(f"  testpmd printed {len(tx)} stats periods, too few to measure", file=sys.stderr)
        return 1
    print(f"  forwarded (port 1 Tx-pps): {summary(rates)}")
    bad = {k: v for k, v in sorted(final.items()) if v}
    print("  drops/errors: " + (" ".join(f"{k}={v}" for k, v in bad.items()) or
                                "none (RX-missed, RX-nombuf, RX-errors, TX-errors, RX/TX-dropped all 0)"))
    open(result, "w").write(f"{statistics.median(rates) / 1e6:.3f}\n")
    return 0

def find(obj, key):
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            r = find(v, key)
            if r is not None:
                return r
    return None

def numbers(obj):
    return {k: v for k, v in (obj or {}).items() if isinstance(v, (int, float))}

def get(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)

def wait(url, timeout):
    """Exit 0 once the API answers with counters, 1 on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if find(get(url), "counters") is not None:
                return 0
        except Exception:
            pass
        time.sleep(0.25)
    return 1

def sample(url, warmup, duration, result):
    samples = []  # (monotonic time, counters, drops)
    tick = time.monotonic()
    for _ in range(warmup + duration + 1):
        t0 = time.monotonic()
        try:
            data = get(url)
        except Exception as e:
            print(f"  GET {url} failed after {len(samples)} samples: {e}", file=sys.stderr)
            return 1
        t1 = time.monotonic()
        samples.append(((t0 + t1) / 2, numbers(find(data, "counters")), numbers(find(data, "drops"))))
        tick += 1.0
        time.sleep(max(0.0, tick - time.monotonic()))

    def rates(key, window):
        return [(b[1].get(key, 0) - a[1].get(key, 0)) / (b[0] - a[0]) for a, b in zip(window, window[1:])]

    window = samples[warmup:]
    fwd = rates("to_nodes", window)
    # Each worker's pcap holds only flows it owns: a frame handed to another worker means
    # the pcap and the workers' ownership disagree, and the figure would measure the rings.
    handed = window[-1][1].get("redirected", 0) - window[0][1].get("redirected", 0)
    if handed:
        print(f"  {handed} frames were handed between workers while measuring (counter redirected): "
              "the pcaps do not match the workers' flow ownership", file=sys.stderr)
        return 1
    if max(fwd) <= 0:
        print("  nodegate forwarded nothing (to_nodes did not move)", file=sys.stderr)
    else:
        print(f"  forwarded (to_nodes):      {summary(fwd)}")
    for key in ("rx_packets", "tx_packets"):
        r = rates(key, window)
        if any(r):
            print(f"  {key + ':':27}{summary(r)}")
    first, last = window[0], window[-1]
    print("  counters at end: " + " ".join(f"{k}={v}" for k, v in sorted(last[1].items()) if v))
    drops_total = {k: v for k, v in sorted(last[2].items()) if v}
    drops_window = {k: v - first[2].get(k, 0) for k, v in drops_total.items() if v - first[2].get(k, 0)}
    print("  drops since start:        " + (" ".join(f"{k}={v}" for k, v in drops_total.items()) or "none"))
    print("  drops while measuring:    " + (" ".join(f"{k}={v}" for k, v in drops_window.items()) or "none"))
    if max(fwd) <= 0:
        return 1
    open(result, "w").write(f"{statistics.median(fwd) / 1e6:.3f}\n")
    return 0

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "testpmd":
        sys.exit(testpmd(args[0], int(args[1]), int(args[2]), args[3]))
    if cmd == "wait":
        sys.exit(wait(args[0], float(args[1])))
    if cmd == "sample":
        sys.exit(sample(args[0], int(args[1]), int(args[2]), args[3]))
    sys.exit(f"unknown helper command {cmd}")
PY

# One pcap per worker (RX queue), each with the flows that worker owns.
RX_PCAPS=""
for ((w = 0; w < WORKERS; w++)); do
  pcap="$WORK/flows-$w.pcap"
  python3 "$REPO/scripts/mkpcap.py" "$pcap" --flows "$FLOWS" --packets-per-flow "$PACKETS_PER_FLOW" \
    --vip 10.100.0.100 --port 80 --dst-mac "$PCAP_PORT_MAC" --workers "$WORKERS" --worker "$w" \
    2>"$WORK/mkpcap.log" || { cat "$WORK/mkpcap.log" >&2; die "mkpcap.py failed"; }
  RX_PCAPS+="rx_pcap=$pcap,"
done
FRAMES=$((WORKERS * FLOWS * PACKETS_PER_FLOW))
# net_pcap's infinite_rx keeps a copy of every frame of the file in mbufs of the RX queue's
# pool for the life of the port; the pool needs room for those plus the working set.
NB_MBUFS=$((FRAMES + 32768 * WORKERS > 65536 ? FRAMES + 32768 * WORKERS : 65536))
PCAP_DEVICE="net_pcap0,${RX_PCAPS}infinite_rx=1"
NULL_DEVICE="net_null0,no-rx=1"
RUN_LIMIT=$((START_TIMEOUT + WARMUP + DURATION + 30))

# Forwarding lcores 1..N. While there is a spare core, lcore i runs on core i and lcore 0
# (main) on core 0 (EAL's default for -l 0-N, so no map is passed); with N = cores, lcore i
# runs on core i-1 and lcore 0 floats.
FWD_LCORES=$(seq -s, 1 "$WORKERS")
LCORE_ARGS=(-l "0,$FWD_LCORES")
NODEGATE_EAL_LCORES=""
if ((WORKERS < $(nproc))); then
  LCORE_MAP="0@0"
  for ((w = 1; w <= WORKERS; w++)); do LCORE_MAP+=",$w@$w"; done
else
  LCORE_MAP="0@(0-$(($(nproc) - 1)))"
  for ((w = 1; w <= WORKERS; w++)); do LCORE_MAP+=",$w@$((w - 1))"; done
  LCORE_ARGS=(--lcores="$LCORE_MAP")
  NODEGATE_EAL_LCORES=", \"--lcores=$LCORE_MAP\""
fi

echo "NodeGate data-plane benchmark: $WORKERS worker(s) x $FLOWS flows x $PACKETS_PER_FLOW frames" \
  "(64 B with FCS), warm-up ${WARMUP} s + ${DURATION} s per side, lcores $LCORE_MAP (forwarding: $FWD_LCORES)"
echo "  in:  $PCAP_DEVICE"
echo "  out: $NULL_DEVICE"

TESTPMD_MPPS=""
NODEGATE_MPPS=""
TESTPMD_ALL=()
NODEGATE_ALL=()
RATIOS=()
FAILED=0

# ---------------------------------------------------------------------------------------
run_testpmd() {
  local log="$WORK/testpmd.log" pid i
  echo
  echo "(a) dpdk-testpmd $TESTPMD_MODE forwarding, $WORKERS forwarding core(s) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  ensure_hugepages
  claim_prefix "$PREFIX_TESTPMD"
  # Line-buffered, so the log shows each stats period as it is printed.
  timeout -s TERM -k 10 "$RUN_LIMIT" stdbuf -oL \
    dpdk-testpmd "${LCORE_ARGS[@]}" --file-prefix "$PREFIX_TESTPMD" --huge-unlink --no-pci \
    --vdev "$PCAP_DEVICE" --vdev "$NULL_DEVICE" -- \
    --forward-mode="$TESTPMD_MODE" --nb-cores="$WORKERS" --rxq="$WORKERS" --txq="$WORKERS" \
    --stats-period 1 --total-num-mbufs="$NB_MBUFS" \
    >"$log" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < START_TIMEOUT * 4; i++)); do
    grep -q "start packet forwarding" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if ! grep -q "start packet forwarding" "$log"; then
    echo "bench-dataplane: dpdk-testpmd did not start forwarding; last lines of its log:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    return 1
  fi
  # Wait for the periods we need: a zero baseline, the warm-up, the measured seconds.
  local periods=$((1 + WARMUP + DURATION)) deadline=$((SECONDS + WARMUP + DURATION + 30))
  while (($(grep -c "NIC statistics for port 1" "$log") < periods)); do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      echo "bench-dataplane: dpdk-testpmd stopped printing statistics; last lines of its log:" >&2
      tail -n 20 "$log" | sed 's/^/  | /' >&2
      return 1
    fi
    sleep 0.2
  done
  stop_pid "$pid"
  python3 "$WORK/helper.py" testpmd "$log" "$WARMUP" "$DURATION" "$WORK/testpmd.result" || return 1
  TESTPMD_MPPS=$(<"$WORK/testpmd.result")
}

# ---------------------------------------------------------------------------------------
write_nodegate_config() {
  cat >"$1" <<EOF
# Generated by scripts/bench-dataplane.sh: $WORKERS worker(s), pcap replay in, net_null out.
dataplane = {
  eal = [ "--file-prefix", "$PREFIX_NODEGATE", "--huge-unlink", "--no-pci"$NODEGATE_EAL_LCORES ];
  workers = [ $(seq -s ', ' 1 "$WORKERS") ];
  # net_pcap with infinite_rx keeps the whole capture in mbufs of the RX pool.
  mbufs = $((NB_MBUFS > 131071 ? NB_MBUFS : 131071));
  ports = (
    { name = "ext"; device = "$PCAP_DEVICE"; role = "external";
      address = "10.100.0.1/24"; mtu = 1500; },
    { name = "int"; device = "$NULL_DEVICE"; role = "internal";
      address = "10.200.0.1/24"; mtu = 1500; }
  );
  mode = "$MODE";
  snat = { addresses = [ "10.200.0.1" ]; };
  flows = { capacity = ${NG_BENCH_CAPACITY:-1048576}; tcp_timeout = 900; tcp_transitory_timeout = 60; udp_timeout = 120; };
};

api = { listen = "127.0.0.1:$API_PORT"; };
state_dir = "$WORK/state";

nodes = (
  { name = "n1"; address = "10.200.0.11"; mac = "02:00:00:00:02:11"; },
  { name = "n2"; address = "10.200.0.12"; mac = "02:00:00:00:02:12"; },
  { name = "n3"; address = "10.200.0.13"; mac = "02:00:00:00:02:13"; }
);

services = (
  { namespace = "default"; name = "web"; vip = "10.100.0.100";
    ports = ( { name = "http"; protocol = "TCP"; port = 80; node_port = 30080; } );
    external_traffic_policy = "Cluster"; }
);
EOF
}

run_nodegate() {
  local bin="$BUILD_DIR/control/nodegate" conf="$WORK/nodegate.conf" log="$WORK/nodegate.log"
  local url="http://127.0.0.1:$API_PORT/v1/stats" pid rc
  echo
  echo "(b) nodegate ($MODE), $WORKERS worker(s) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [[ ! -x $bin ]]; then
    echo "bench-dataplane: nodegate not found at $bin; build it with" >&2
    echo "  cmake -S $REPO -B $BUILD_DIR -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD_DIR -j2 --target nodegate" >&2
    return 1
  fi
  mkdir -p "$WORK/state"
  write_nodegate_config "$conf"
  ensure_hugepages
  claim_prefix "$PREFIX_NODEGATE"
  # Own network namespace with only loopback: the API is reachable from inside it, and
  # nothing nodegate sends through the kernel (health probes to 10.200.0.x) leaves the box.
  if ((!NETNS_MADE)); then
    ip netns add "$NETNS" || die "cannot create network namespace $NETNS"
    NETNS_MADE=1
    ip netns exec "$NETNS" ip link set lo up
  fi
  ip netns exec "$NETNS" timeout -s TERM -k 10 "$RUN_LIMIT" "$bin" --config "$conf" \
    >"$log" 2>&1 </dev/null &
  pid=$!
  PIDS+=("$pid")
  ip netns exec "$NETNS" python3 "$WORK/helper.py" wait "$url" "$START_TIMEOUT" &
  local waiter=$!
  while kill -0 "$waiter" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 0.25; done
  if ! kill -0 "$pid" 2>/dev/null || ! wait "$waiter"; then
    kill "$waiter" 2>/dev/null || true
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench-dataplane: nodegate did not start: no answer from $url within ${START_TIMEOUT} s;" \
        "last lines of its log:" >&2
    else
      wait "$pid" && rc=0 || rc=$?
      echo "bench-dataplane: nodegate did not start: it exited (status $rc) before answering" \
        "$url; last lines of its log:" >&2
    fi
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    if grep -q "Not enough mbufs to accommodate packets in pcap file" "$log"; then
      echo "bench-dataplane: net_pcap's infinite_rx keeps all $FRAMES frames of the pcap in mbufs" \
        "of the RX queue's pool; nodegate's mempool must hold them plus its working set" >&2
    fi
    return 1
  fi
  rc=0
  # In the background so that a signal to this script is handled at once (bash runs traps
  # only between foreground commands, `wait` is interruptible).
  ip netns exec "$NETNS" python3 "$WORK/helper.py" sample "$url" "$WARMUP" "$DURATION" \
    "$WORK/nodegate.result" &
  local sampler=$!
  PIDS+=("$sampler")
  wait "$sampler" || rc=1
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench-dataplane: nodegate exited during the run; last lines of its log:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    rc=1
  fi
  stop_pid "$pid"
  ((rc == 0)) || return 1
  NODEGATE_MPPS=$(<"$WORK/nodegate.result")
}

# ---------------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

for ((round = 1; round <= ROUNDS; round++)); do
  ((ROUNDS == 1)) || printf '\n=== round %d of %d\n' "$round" "$ROUNDS"
  TESTPMD_MPPS=""
  NODEGATE_MPPS=""
  if [[ $ONLY != nodegate ]]; then run_testpmd || FAILED=1; fi
  if [[ $ONLY != testpmd ]]; then run_nodegate || FAILED=1; fi
  [[ -n $TESTPMD_MPPS ]] && TESTPMD_ALL+=("$TESTPMD_MPPS")
  [[ -n $NODEGATE_MPPS ]] && NODEGATE_ALL+=("$NODEGATE_MPPS")
  if [[ -n $TESTPMD_MPPS && -n $NODEGATE_MPPS ]]; then
    RATIOS+=("$(ratio "$NODEGATE_MPPS" "$TESTPMD_MPPS")")
  fi
  ((FAILED)) && break
done

echo
echo "Result ($(nproc) cores, $(uname -r), DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?')," \
  "$WORKERS forwarding lcore(s) per side, $FLOWS flows each, 64-byte frames):"
if ((ROUNDS > 1)); then
  printf '  per round, testpmd Mpps : %s\n' "${TESTPMD_ALL[*]:-n/a}"
  printf '  per round, nodegate Mpps: %s\n' "${NODEGATE_ALL[*]:-n/a}"
  printf '  per round, ratio        : %s\n' "${RATIOS[*]:-n/a}"
fi
T=""
N=""
if ((${#TESTPMD_ALL[@]})); then T=$(median "${TESTPMD_ALL[@]}"); fi
if ((${#NODEGATE_ALL[@]})); then N=$(median "${NODEGATE_ALL[@]}"); fi
per_worker() { [[ -n $1 ]] && awk -v t="$1" -v n="$WORKERS" 'BEGIN { printf " (%.3f per forwarding core)", t / n }'; }
printf '  dpdk-testpmd %-5s: %s Mpps%s\n' "$TESTPMD_MODE" "${T:-n/a}" "$( ((WORKERS > 1)) && per_worker "$T")"
printf '  nodegate %-7s : %s Mpps%s\n' "$MODE" "${N:-n/a}" "$( ((WORKERS > 1)) && per_worker "$N")"
if ((${#RATIOS[@]})); then
  note=""
  if ((ROUNDS > 1)); then note=" (median of per-round ratios)"; fi
  printf '  ratio nodegate/testpmd: %s%s\n' "$(median "${RATIOS[@]}")" "$note"
fi
if ((FAILED)); then
  echo "bench-dataplane: FAILED (see messages above)" >&2
  exit 1
fi
