#!/usr/bin/env python3
"""Reconfiguration latency: from an API call (or a Kubernetes watch event) to the first
packet that reaches the node the change made eligible. Run by scripts/bench-reconfig.sh,
which builds the namespace topology and starts nodegate; the roles run in different
namespaces and share CLOCK_MONOTONIC (one kernel).

  client OUT VIP PORT SECONDS
      From the client namespace: a new UDP flow every millisecond (a fresh socket, so a
      fresh source port and a fresh Maglev choice) to VIP:PORT; the nodes' echo servers
      answer "NAME ...". Writes "t_recv node" lines (monotonic seconds).
  rest OUT API NS NAME CHANGES GAP_MS NODE_A ADDR_A NODE_B ADDR_B
      From the box: alternates the load balancer's node set between A and B through
      PUT /v1/loadbalancers/NS/NAME/nodes. Writes "t_call node" lines: the moment just
      before the call and the node that the change made the only one.
  kube OUT FAKE_URL CA CHANGES GAP_MS NODE_A NODE_B
      From the box: the same through the fake API server's admin API: alternately labels
      NODE_A or NODE_B node.kubernetes.io/exclude-from-external-load-balancers=true (the
      other one false), so only the other serves; the watch event reaches the controller.
  report CHANGES_FILE REPLIES_FILE
      For each change: the first reply from its node after the call; prints the median,
      p90, p99 and max in ms.
"""
import json
import socket
import ssl
import statistics
import sys
import threading
import time
import urllib.request


def client(out, vip, port, seconds):
    replies = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    sockets = []

    def receive(sock):
        try:
            data = sock.recv(2048)
        except OSError:
            return
        with lock:
            replies.append((time.monotonic(), data.split(b" ", 1)[0].decode()))

    # One socket per flow; a poller reads whichever answer. Bounded: SECONDS.
    import selectors
    sel = selectors.DefaultSelector()
    next_send = time.monotonic()
    flows = 0
    while time.monotonic() < stop:
        now = time.monotonic()
        if now >= next_send:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            try:
                # An explicit, never reused source port: a port the kernel handed out
                # again would be an old flow, pinned to its old node.
                s.bind(("", 10000 + flows % 50000))
                flows += 1
                s.sendto(b"probe", (vip, port))
                sel.register(s, selectors.EVENT_READ)
                sockets.append((now, s))
            except OSError:
                s.close()
            next_send += 0.001
        for key, _ in sel.select(timeout=max(0.0, next_send - time.monotonic())):
            receive(key.fileobj)
            sel.unregister(key.fileobj)
            key.fileobj.close()
        # Forget sockets older than a second (their answer is not coming).
        while sockets and sockets[0][0] < now - 1.0:
            _, old = sockets.pop(0)
            try:
                sel.unregister(old)
            except (KeyError, ValueError):
                pass
            old.close()
    with open(out, "w") as f:
        for t, node in replies:
            f.write("%.6f %s\n" % (t, node))


def rest(out, api, ns, name, changes, gap_ms, node_a, addr_a, node_b, addr_b):
    lines = []
    for i in range(changes):
        node, addr = (node_b, addr_b) if i % 2 == 0 else (node_a, addr_a)
        body = json.dumps({"nodes": [{"name": node, "address": addr}]}).encode()
        req = urllib.request.Request("%s/v1/loadbalancers/%s/%s/nodes" % (api, ns, name), data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
        t = time.monotonic()
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
        lines.append("%.6f %s" % (t, node))
        time.sleep(gap_ms / 1000.0)
    open(out, "w").write("\n".join(lines) + "\n")


def kube(out, fake_url, ca, changes, gap_ms, node_a, node_b):
    ctx = ssl.create_default_context(cafile=ca)
    label = "node.kubernetes.io/exclude-from-external-load-balancers"
    lines = []

    def patch(node, excluded):
        body = json.dumps({"metadata": {"labels": {label: "true" if excluded else "false"}}}).encode()
        req = urllib.request.Request("%s/_fake/objects/nodes/%s" % (fake_url, node), data=body, method="PATCH",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            r.read()

    for i in range(changes):
        # Exclude the node that served, include the other: one watch event each.
        now_serving, was_serving = (node_b, node_a) if i % 2 == 0 else (node_a, node_b)
        patch(now_serving, False)  # both serve for a moment: the new one is eligible from here
        t = time.monotonic()
        lines.append("%.6f %s" % (t, now_serving))
        time.sleep(gap_ms / 2000.0)
        patch(was_serving, True)
        time.sleep(gap_ms / 2000.0)
    open(out, "w").write("\n".join(lines) + "\n")


def report(changes_file, replies_file):
    changes = [(float(t), n) for t, n in (l.split() for l in open(changes_file) if l.strip())]
    replies = [(float(t), n) for t, n in (l.split() for l in open(replies_file) if l.strip())]
    latencies, missing = [], 0
    for i, (t, node) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
        first = next((rt for rt, rn in replies if t < rt < end and rn == node), None)
        if first is None:
            missing += 1
        else:
            latencies.append((first - t) * 1000.0)
    latencies.sort()
    if not latencies:
        print("no change was seen: %d changes, %d replies" % (len(changes), len(replies)))
        return 1
    q = lambda p: latencies[min(len(latencies) - 1, int(round(p * (len(latencies) - 1))))]
    print("changes %d, seen %d, missing %d; ms: median %.1f p90 %.1f p99 %.1f max %.1f min %.1f" % (
        len(changes), len(latencies), missing, statistics.median(latencies), q(0.9), q(0.99), latencies[-1],
        latencies[0]))
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "client":
        client(args[0], args[1], int(args[2]), float(args[3]))
    elif role == "rest":
        rest(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]), *args[6:10])
    elif role == "kube":
        kube(args[0], args[1], args[2], int(args[3]), int(args[4]), args[5], args[6])
    elif role == "report":
        sys.exit(report(args[0], args[1]))
    else:
        sys.exit("unknown role " + role)
