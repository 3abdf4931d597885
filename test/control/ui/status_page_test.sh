#!/usr/bin/env bash
# Renders the status page in headless Chromium and checks the DOM it builds.
#
#   status_page_test.sh --standalone PAGE
#       PAGE is the page's HTML file, or an executable that prints it (status_page_dump,
#       so the test sees exactly the bytes compiled into the binary). Serves it at / from a
#       python3 http.server on a free 127.0.0.1 port, with canned /v1/vips answers:
#         1. one VIP, backend n1 up and n2 down (refused): the VIP:port row, n2's row with
#            data-state="down" and its reason, no error banner, and that the page polls;
#         2. a first answer with every backend down, then 503s: the all-down warning stays
#            and the error banner shows the API's error.
#   status_page_test.sh --url URL --expect-vip VIP:PORT [--expect-down NODE]
#       Checks a running box: the page at URL shows the VIP:port row (and NODE's backend
#       row in state "down"), with no error banner.
#
# Exit 0 pass, 1 fail, 77 skipped (no Chromium). Each browser run is bounded by a
# timeout; the server and temporary files are removed on every exit path.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" >&2
  exit 2
}

mode="" page="" url="" expect_vip="" expect_down=""
while (($#)); do
  case "$1" in
    --standalone) mode=standalone; page=${2:?PAGE missing}; shift 2 ;;
    --url) mode=url; url=${2:?URL missing}; shift 2 ;;
    --expect-vip) expect_vip=${2:?VIP:PORT missing}; shift 2 ;;
    --expect-down) expect_down=${2:?NODE missing}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "status_page_test: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -n "$mode" ]] || usage
[[ "$mode" == standalone || -n "$expect_vip" ]] || { echo "status_page_test: --url needs --expect-vip" >&2; exit 2; }

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$(command -v "$b"); break; fi
done
if [[ -z "$browser" ]]; then
  echo "SKIP: no chromium found" >&2
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/status_page_test.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# render URL OUT: the DOM after 5 s of virtual time (polls run, fetches complete).
render() {
  local rc=0
  timeout -k 5 60 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$work/profile" --virtual-time-budget=5000 --dump-dom "$1" \
    >"$2" 2>"$work/chromium.log" || rc=$?
  if ((rc != 0)) || [[ ! -s "$2" ]]; then
    echo "FAIL chromium exited $rc on $1; last log lines:" >&2
    tail -5 "$work/chromium.log" >&2
    return 1
  fi
}

# check_dom.py DOM [--vip V] [--down NODE [--reason TEXT]] [--state NODE:STATE]...
#              [--banner hidden|visible] [--banner-text TEXT] [--all-down-warning V]
cat >"$work/check_dom.py" <<'PY'
import argparse, sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

class Dom(HTMLParser):
    """Every element with its attributes and the text of its whole subtree."""
    def __init__(self):
        super().__init__()
        self.elements, self.stack = [], []
    def handle_starttag(self, tag, attrs):
        e = {"tag": tag, "attrs": dict(attrs), "text": []}
        self.elements.append(e)
        if tag not in VOID:
            self.stack.append(e)
    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break
    def handle_data(self, data):
        for e in self.stack:
            e["text"].append(data)

ap = argparse.ArgumentParser()
ap.add_argument("dom")
ap.add_argument("--vip")
ap.add_argument("--down")
ap.add_argument("--reason")
ap.add_argument("--state", action="append", default=[], help="NODE:STATE, repeatable")
ap.add_argument("--banner", choices=["hidden", "visible"])
ap.add_argument("--banner-text")
ap.add_argument("--all-down-warning")
a = ap.parse_args()
dom = Dom()
dom.feed(open(a.dom, encoding="utf-8").read())
text = lambda e: "".join(e["text"])
def with_attr(name, value):
    return [e for e in dom.elements if e["attrs"].get(name) == value]
fails = []

if a.vip:
    rows = with_attr("data-vip", a.vip)
    if not rows:
        fails.append(f'no element with data-vip="{a.vip}"')
    elif a.all_down_warning is not None:
        if "ALL BACKENDS DOWN" not in text(rows[0]):
            fails.append(f"VIP row {a.vip} lacks the all-backends-down warning: {text(rows[0])!r}")
if a.down:
    rows = with_attr("data-node", a.down)
    if not rows:
        fails.append(f'no element with data-node="{a.down}"')
    else:
        # A node backs every port of every VIP: each of its rows must say down.
        for row in rows:
            state = row["attrs"].get("data-state")
            if state != "down":
                fails.append(f'backend {a.down} has data-state="{state}", expected "down"')
        if a.reason and not any(a.reason in text(row) for row in rows):
            fails.append(f"backend {a.down} rows lack reason {a.reason!r}: {[text(r) for r in rows]!r}")
for spec in a.state:
    node, want = spec.split(":", 1)
    rows = with_attr("data-node", node)
    got = rows[0]["attrs"].get("data-state") if rows else None
    if got != want:
        fails.append(f'backend {node} has data-state="{got}", expected "{want}"')
if a.banner:
    banners = [e for e in dom.elements if e["attrs"].get("id") == "error-banner"]
    if not banners:
        fails.append("no #error-banner element")
    else:
        hidden = "hidden" in banners[0]["attrs"]
        if (a.banner == "hidden") != hidden:
            fails.append(f"error banner is {'hidden' if hidden else 'visible'}, expected {a.banner}: "
                         f"{text(banners[0])!r}")
        if a.banner_text and a.banner_text not in text(banners[0]):
            fails.append(f"error banner lacks {a.banner_text!r}: {text(banners[0])!r}")
for f in fails:
    print("FAIL " + f)
sys.exit(1 if fails else 0)
PY

check() {  # check NAME DOM ARGS...
  local name=$1 dom=$2
  shift 2
  if python3 "$work/check_dom.py" "$dom" "$@"; then
    echo "PASS $name"
  else
    if [[ -n "${KEEP_DOM_DIR:-}" ]]; then
      cp "$dom" "$KEEP_DOM_DIR/" && echo "FAIL $name (DOM copied to $KEEP_DOM_DIR/$(basename "$dom"))"
    else
      echo "FAIL $name (set KEEP_DOM_DIR=DIR to keep the rendered DOM)"
    fi
    return 1
  fi
}

if [[ "$mode" == url ]]; then
  render "$url" "$work/dom.html"
  args=(--vip "$expect_vip" --banner hidden)
  [[ -n "$expect_down" ]] && args+=(--down "$expect_down")
  check "status page at $url" "$work/dom.html" "${args[@]}"
  exit 0
fi

# --- standalone: our own server with canned answers -------------------------------------
if [[ -x "$page" && ! -d "$page" && "$page" != *.html ]]; then
  "$page" >"$work/page.html"
else
  cp "$page" "$work/page.html"
fi
[[ -s "$work/page.html" ]] || { echo "FAIL empty page from $page" >&2; exit 1; }

cat >"$work/server.py" <<'PY'
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

page_path, scenario, port_file, log_file = sys.argv[1:5]
page = open(page_path, "rb").read()

def backend(node, address, state, reason="", detail="", since="2026-11-24T02:59:00Z"):
    z = {"packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0, "new_flows": 0, "active_flows": 0}
    return {"node": node, "address": address, "node_port": 30080, "weight": 1, "serving": state == "up",
            "health": {"state": state, "reason": reason, "detail": detail, "since": since,
                       "probe": f"http://{address}:10256/healthz"},
            "counters": dict(z, packets_in=100, bytes_in=7500, active_flows=2) if state == "up" else z,
            "rates": {"packets_in": 3.5, "bytes_in": 210.0, "packets_out": 3.0, "bytes_out": 4000.0,
                      "new_flows": 0.5} if state == "up" else {k: 0.0 for k in z if k != "active_flows"}}

def vips(backends, all_down):
    return {"generation": 4, "time": "2026-11-24T03:00:00Z",
            "vips": [{"vip": "10.100.0.100", "owner": "default/web", "source": "config", "mode": "fullnat",
                      "ip_mode": "Proxy",
                      "ports": [{"port": 80, "protocol": "TCP", "name": "http", "node_port": 30080,
                                 "external_traffic_policy": "Cluster", "all_backends_down": all_down,
                                 "counters": {"packets_in": 120, "bytes_in": 9000, "packets_out": 110,
                                              "bytes_out": 150000, "new_flows": 12, "active_flows": 2},
                                 "rates": {"packets_in": 3.5, "bytes_in": 210.0, "packets_out": 3.0,
                                           "bytes_out": 4000.0, "new_flows": 0.5},
                                 "backends": backends}]}],
            "drops": {"no_backend": 0, "no_service": 3}}

N2_DOWN = backend("n2", "10.200.0.12", "down", "refused", "connection refused", "2026-11-24T03:00:00Z")
served = {"count": 0}

class Handler(BaseHTTPRequestHandler):
    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(log_file, "a") as log:
            log.write(self.path + "\n")
        if self.path == "/":
            return self.send(200, "text/html; charset=utf-8", page)
        if self.path.split("?")[0] == "/v1/vips":
            served["count"] += 1
            if scenario == "ok":
                doc = vips([backend("n1", "10.200.0.11", "up"), N2_DOWN], False)
            elif served["count"] == 1:
                doc = vips([backend("n1", "10.200.0.11", "down", "timeout", "no answer in 1 s"), N2_DOWN], True)
            else:
                return self.send(503, "application/json", b'{"error":"dataplane restarting"}')
            return self.send(200, "application/json", json.dumps(doc).encode())
        self.send(404, "application/json", b'{"error":"not found"}')

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
PY

# start_server SCENARIO: sets base_url; the server lives until the next call or exit.
start_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  rm -f "$work/port" "$work/requests.log"
  : >"$work/requests.log"
  python3 "$work/server.py" "$work/page.html" "$1" "$work/port" "$work/requests.log" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 100); do
    [[ -s "$work/port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "FAIL server died:" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
  [[ -s "$work/port" ]] || { echo "FAIL server did not start within 5 s" >&2; exit 1; }
  base_url="http://127.0.0.1:$(cat "$work/port")/"
}

fail=0

start_server ok
render "$base_url" "$work/ok.html"
check "VIP row, n2 down with reason, no banner" "$work/ok.html" \
  --vip 10.100.0.100:80 --down n2 --reason refused --banner hidden || fail=1
check "n1 shown up" "$work/ok.html" --state n1:up || fail=1
polls=$(grep -c '^/v1/vips' "$work/requests.log" || true)
if ((polls >= 2)); then
  echo "PASS page polls /v1/vips ($polls requests in 5 s of virtual time)"
else
  echo "FAIL page fetched /v1/vips $polls times in 5 s of virtual time, expected >= 2"; fail=1
fi

start_server flaky
render "$base_url" "$work/flaky.html"
check "all-down warning kept, error banner with the API error" "$work/flaky.html" \
  --vip 10.100.0.100:80 --all-down-warning 10.100.0.100:80 --down n1 --reason timeout \
  --banner visible --banner-text "HTTP 503: dataplane restarting" || fail=1

exit $fail
