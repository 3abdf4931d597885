#!/usr/bin/python3
"""The official Python client (Debian's python3-kubernetes) against the fake API server.

Usage: python_client_check.py HOST_URL CA_FILE TOKEN
The fake must be running with that token. Exits non-zero on the first mismatch. Every check
asserts on values the client decoded, not on "no exception".
"""

import json
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

URL, CA, TOKEN = sys.argv[1:4]
CTX = ssl.create_default_context(cafile=CA)


def admin(method, path, body=None):
    req = urllib.request.Request(URL + "/_fake/" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit("FAIL (python client): admin %s %s -> %d %s" % (method, path, e.code, e.read()))


def api(token=TOKEN):
    c = client.Configuration()
    c.host = URL
    c.ssl_ca_cert = CA
    c.verify_ssl = True
    c.api_key = {"authorization": "Bearer " + token}
    return client.CoreV1Api(client.ApiClient(c))


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL (python client): " + what)
    print("ok   python: " + what)


def expect_api_error(status, fn, what):
    try:
        fn()
    except ApiException as e:
        check(e.status == status, "%s -> ApiException %d (got %d: %s)" % (what, status, e.status, e.reason))
        return e
    raise SystemExit("FAIL (python client): %s did not raise ApiException %d" % (what, status))


def svc(i):
    # Every tenth Service has a second (UDP) port: 2,200 NodePorts fit the default range.
    ports = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
    if i % 10 == 0:
        ports.append({"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353})
    return {"metadata": {"name": "svc-%04d" % i, "namespace": "ns-%02d" % (i % 25),
                         "labels": {"app": "a%d" % (i % 3)}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "nodegate.io/lb", "ports": ports}}


def node(i):
    return {"metadata": {"name": "node-%03d" % i},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.2.%d.%d" % (i // 250, i % 250 + 1)}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def main():
    v1 = api()
    admin("POST", "state", {"services": [svc(i) for i in range(2000)], "nodes": [node(i) for i in range(300)]})
    admin("POST", "config", {"bookmark_interval": 0.5})

    # --- LIST with limit/continue, a change between pages must not show up (snapshot). ---
    t0 = time.time()
    names, pages, rvs, cont = [], 0, set(), None
    while True:
        lst = v1.list_service_for_all_namespaces(limit=500, _continue=cont)
        pages += 1
        rvs.add(lst.metadata.resource_version)
        names += ["%s/%s" % (s.metadata.namespace, s.metadata.name) for s in lst.items]
        if pages == 1:
            admin("DELETE", "objects/services/ns-24/svc-1999")
        cont = lst.metadata._continue
        if not cont:
            break
    check(pages == 4 and len(names) == 2000 and len(set(names)) == 2000,
          "2000 Services in 4 pages of 500 (got %d in %d)" % (len(names), pages))
    check(len(rvs) == 1, "every page carries the snapshot RV %s" % rvs)
    check("ns-24/svc-1999" in names, "an object deleted after page 1 is still in the snapshot")
    check(names == sorted(names), "items come in key order")
    lst0 = v1.list_service_for_all_namespaces(limit=500)
    s0 = [s for s in lst0.items if s.metadata.name == "svc-0000"][0]
    check(s0.spec.ports[1].protocol == "UDP" and s0.spec.ports[1].node_port >= 30000
          and s0.spec.load_balancer_class == "nodegate.io/lb" and s0.status.load_balancer.ingress is None,
          "Service fields decode (UDP port, nodePort %s, class, empty status)" % s0.spec.ports[1].node_port)
    nodes = v1.list_node(limit=500)
    check(len(nodes.items) == 300 and nodes.metadata._continue is None
          and nodes.items[0].status.addresses[0].address == "10.2.0.1",
          "300 Nodes in one page of 500 with addresses")
    check(time.time() - t0 < 60, "lists took %.1fs" % (time.time() - t0))

    # --- WATCH from the list RV with bookmarks and a timeout. ---
    rv = v1.list_namespaced_service("ns-01").metadata.resource_version

    def mutate():
        time.sleep(0.3)
        admin("POST", "objects/services", {"metadata": {"name": "fresh", "namespace": "ns-01"},
                                           "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        admin("PATCH", "objects/services/ns-01/svc-0001", {"metadata": {"annotations": {"x": "1"}}})
        admin("PATCH", "objects/services/ns-02/svc-0002", {"metadata": {"annotations": {"x": "1"}}})  # other ns
        admin("DELETE", "objects/services/ns-01/fresh")
    th = threading.Thread(target=mutate)
    th.start()
    w = watch.Watch()
    events = []
    t0 = time.time()
    for ev in w.stream(v1.list_namespaced_service, "ns-01", resource_version=rv,
                       allow_watch_bookmarks=True, timeout_seconds=3):
        events.append(ev)
    elapsed = time.time() - t0
    th.join()
    real = [(e["type"], e["object"].metadata.name) for e in events if e["type"] != "BOOKMARK"]
    check(real == [("ADDED", "fresh"), ("MODIFIED", "svc-0001"), ("DELETED", "fresh")],
          "watch from RV %s sees exactly ADDED/MODIFIED/DELETED in ns-01: %s" % (rv, real))
    rvs = [int(e["object"].metadata.resource_version) for e in events if e["type"] != "BOOKMARK"]
    check(rvs == sorted(rvs) and rvs[0] > int(rv), "event RVs increase from the list RV: %s" % rvs)
    bms = [e for e in events if e["type"] == "BOOKMARK"]
    check(bms and all(set(b["raw_object"]["metadata"]) == {"resourceVersion"} for b in bms),
          "BOOKMARKs seen (%d) carrying only metadata.resourceVersion" % len(bms))
    check(2.5 < elapsed < 8, "timeout_seconds=3 ended the stream after %.1fs" % elapsed)

    # --- Status subresource and finalizers. ---
    body = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "Proxy"}]}}}
    out = v1.patch_namespaced_service_status("svc-0001", "ns-01", body)
    check(out.status.load_balancer.ingress[0].ip == "203.0.113.10",
          "patch_namespaced_service_status sets ingress 203.0.113.10")
    # This client predates ipMode (its model drops the field): read the raw JSON back.
    raw = json.loads(v1.read_namespaced_service("svc-0001", "ns-01", _preload_content=False).data)
    check(raw["status"]["loadBalancer"]["ingress"] == [{"ip": "203.0.113.10", "ipMode": "Proxy"}],
          "read back the status, ipMode included: %s" % raw["status"])
    out = v1.patch_namespaced_service("svc-0001", "ns-01", {"status": {"loadBalancer": {"ingress": None}},
                                                            "metadata": {"finalizers": ["nodegate.io/cleanup"]}})
    check(out.metadata.finalizers == ["nodegate.io/cleanup"] and out.status.load_balancer.ingress is not None,
          "finalizer added through the main resource, which ignores .status")
    out = v1.patch_namespaced_service("svc-0001", "ns-01", {"metadata": {"finalizers": ["other.io/x"]}})
    check(out.metadata.finalizers == ["nodegate.io/cleanup", "other.io/x"],
          "strategic merge patch (the client's default for dicts) merges finalizer lists")
    out = v1.patch_namespaced_service("svc-0001", "ns-01", [{"op": "replace", "path": "/metadata/finalizers",
                                                             "value": ["nodegate.io/cleanup"]}])
    check(out.metadata.finalizers == ["nodegate.io/cleanup"], "JSON patch (list body) replaces finalizers")
    v1.delete_namespaced_service("svc-0001", "ns-01")
    got = v1.read_namespaced_service("svc-0001", "ns-01")
    check(got.metadata.deletion_timestamp is not None, "delete with a finalizer sets deletionTimestamp")
    v1.patch_namespaced_service("svc-0001", "ns-01", {"metadata": {"$deleteFromPrimitiveList/finalizers":
                                                                   ["nodegate.io/cleanup"]}})
    expect_api_error(404, lambda: v1.read_namespaced_service("svc-0001", "ns-01"),
                     "the object is gone once its last finalizer is removed; read")
    v1.delete_namespaced_service("svc-0002", "ns-02")
    expect_api_error(404, lambda: v1.read_namespaced_service("svc-0002", "ns-02"),
                     "delete without finalizers is immediate; read")
    e = expect_api_error(422, lambda: v1.patch_namespaced_service_status(
        "svc-0003", "ns-03", {"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}}}),
        "invalid ingress IP")
    check("status.loadBalancer.ingress[0].ip" in json.loads(e.body)["message"], "422 names the field")
    cur = v1.read_namespaced_service("svc-0003", "ns-03")
    stale = str(int(cur.metadata.resource_version) - 1)
    expect_api_error(409, lambda: v1.patch_namespaced_service(
        "svc-0003", "ns-03", {"metadata": {"resourceVersion": stale, "labels": {"x": "y"}}}),
        "patch with a stale metadata.resourceVersion")

    # --- Events. ---
    ev = client.CoreV1Event(metadata=client.V1ObjectMeta(name="svc-0003.ensured", namespace="ns-03"),
                            involved_object=client.V1ObjectReference(kind="Service", namespace="ns-03",
                                                                     name="svc-0003", uid=cur.metadata.uid),
                            reason="EnsuredLoadBalancer", message="Ensured load balancer", type="Normal",
                            count=1, source=client.V1EventSource(component="nodegate"))
    made = v1.create_namespaced_event("ns-03", ev)
    check(made.reason == "EnsuredLoadBalancer" and made.metadata.uid, "create_namespaced_event")
    made = v1.patch_namespaced_event("svc-0003.ensured", "ns-03", {"count": 2})
    check(made.count == 2, "patch_namespaced_event bumps count")

    # --- Stale RV and stale continue: the client sees 410. ---
    old_rv = v1.list_node(limit=1).metadata.resource_version
    first_page = v1.list_node(limit=100)
    admin("PATCH", "objects/nodes/node-000", {"metadata": {"labels": {"bump": "1"}}})
    admin("POST", "compact")

    def stale_watch():
        for _ in watch.Watch().stream(v1.list_node, resource_version=old_rv, timeout_seconds=5):
            pass
    e = expect_api_error(410, stale_watch, "watch from a compacted RV (in-stream ERROR)")
    check("Expired" in e.reason, "the 410 reason is Expired: %s" % e.reason)
    expect_api_error(410, lambda: v1.list_node(limit=100, _continue=first_page.metadata._continue),
                     "list with a compacted continue token")

    # --- Auth. ---
    expect_api_error(401, lambda: api("wrong-token").list_node(limit=1), "a wrong token")
    admin("POST", "token", {"token": "rotated"})
    expect_api_error(401, lambda: v1.list_node(limit=1), "the old token after rotation")
    check(len(api("rotated").list_node(limit=5).items) == 5, "the rotated token works")
    admin("POST", "token", {"token": TOKEN})

    # --- The request log saw what the client sent. ---
    reqs = admin("GET", "requests")["requests"]
    st = [r for r in reqs if r["path"] == "/api/v1/namespaces/ns-01/services/svc-0001/status"]
    check(st and st[0]["content_type"] == "application/strategic-merge-patch+json"
          and st[0]["body"] == body and st[0]["user_agent"].startswith("OpenAPI-Generator/"),
          "request log: PATCH status with the client's content type, body and user agent")
    print("PASS python client")


if __name__ == "__main__":
    main()
