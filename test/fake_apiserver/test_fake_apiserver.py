#!/usr/bin/python3
"""Semantics of the fake Kubernetes API server (fake_apiserver.py), black-box over HTTP(S).

Run: /usr/bin/python3 test/fake_apiserver/test_fake_apiserver.py [-v]
Each class starts its own server process on a free port; the TLS class makes a throwaway CA
and server certificate with the openssl CLI.
"""

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_apiserver.py")
TOKEN = "tok-1"


def make_certs(d):
    """Throwaway CA + server cert for 127.0.0.1 (openssl CLI)."""
    def run(*a):
        subprocess.run(a, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=fake-test-ca")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf")
    return os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key")


class FakeServer:
    def __init__(self, tmp, tls=False, extra=(), port=0, state=None):
        self.tmp = tmp
        self.tls = tls
        self.port_file = os.path.join(tmp, "port")
        self.log_file = os.path.join(tmp, "requests.log")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        args = [sys.executable, SERVER, "--port", str(port), "--port-file", self.port_file,
                "--token", TOKEN, "--log", self.log_file, "--bookmark-interval", "0.3"] + list(extra)
        if state:
            args += ["--state", state]
        if tls:
            self.ca, cert, key = make_certs(tmp) if not os.path.exists(os.path.join(tmp, "ca.crt")) else (
                os.path.join(tmp, "ca.crt"), os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key"))
            args += ["--cert", cert, "--key", key]
        else:
            args += ["--insecure-http"]
        self.err = open(os.path.join(tmp, "server.err"), "a")
        self.proc = subprocess.Popen(args, stderr=self.err)
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("fake apiserver did not start: " + open(os.path.join(tmp, "server.err")).read())
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()

    def conn(self, timeout=10):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, token=TOKEN, headers=None, ctype="application/json"):
        c = self.conn()
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = ctype
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        if r.getheader("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        c.close()
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = raw.decode()
        return r.status, obj, r

    def admin(self, method, path, body=None):
        st, obj, _ = self.request(method, "/_fake/" + path, body, token=None)
        if st >= 300:
            raise AssertionError("admin %s %s -> %d %s" % (method, path, st, obj))
        return obj

    def watch(self, path, timeout=10, token=TOKEN):
        """Opens a watch; returns (response, connection)."""
        c = self.conn(timeout=timeout)
        c.request("GET", path, headers={"Authorization": "Bearer " + token})
        return c.getresponse(), c


def svc(name, ns="shop", port=80, labels=None, **spec):
    s = {"metadata": {"name": name, "namespace": ns},
         "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}}
    if labels:
        s["metadata"]["labels"] = labels
    s["spec"].update(spec)
    return s


def node(name, ip="192.0.2.10"):
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def read_events(resp, n=None, until=None, max_time=5.0):
    """Reads watch lines until n events, until(ev) is true, the stream ends, or max_time."""
    out = []
    deadline = time.time() + max_time
    while time.time() < deadline:
        try:
            line = resp.readline()
        except socket.timeout:
            break
        if not line:
            break
        ev = json.loads(line)
        out.append(ev)
        if n is not None and len(out) >= n:
            break
        if until is not None and until(ev):
            break
    return out


class Base(unittest.TestCase):
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fake-apiserver-test-")
        # Class cleanups run even when setUpClass fails half-way.
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.srv = FakeServer(cls.tmp, tls=cls.TLS)
        cls.addClassCleanup(lambda: cls.srv.stop())

    def setUp(self):
        self.srv.admin("DELETE", "faults")
        self.srv.admin("POST", "token", {"token": TOKEN})
        self.srv.admin("POST", "config", {"bookmark_interval": 0.3, "history_size": 1000})
        self.srv.admin("POST", "state", {"services": [svc("web"), svc("api", port=443)],
                                         "nodes": [node("worker-1"), node("worker-2", "192.0.2.11")]})

    def get(self, path, **kw):
        return self.srv.request("GET", path, **kw)

    def rv(self):
        return int(self.srv.admin("GET", "counters")["resource_version"])


class DiscoveryAndAuth(Base):
    def test_version_and_discovery(self):
        st, v, _ = self.get("/version")
        self.assertEqual((st, v["major"], v["minor"]), (200, "1", "32"))
        st, api, _ = self.get("/api")
        self.assertEqual((api["kind"], api["versions"]), ("APIVersions", ["v1"]))
        st, rl, _ = self.get("/api/v1")
        names = {r["name"]: r for r in rl["resources"]}
        for n in ("services", "services/status", "nodes", "events", "namespaces"):
            self.assertIn(n, names)
        self.assertTrue(names["services"]["namespaced"])
        self.assertFalse(names["nodes"]["namespaced"])
        self.assertIn("watch", names["services"]["verbs"])
        agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        st, g, r = self.get("/apis", headers={"Accept": agg})
        self.assertEqual((st, g["kind"], g["groups"]), (200, "APIGroupList", []))
        self.assertEqual(r.getheader("Content-Type"), "application/json")

    def test_missing_and_wrong_token_are_401_status(self):
        for tok in (None, "wrong"):
            st, body, _ = self.get("/api/v1/services", token=tok)
            self.assertEqual(st, 401)
            self.assertEqual((body["kind"], body["reason"], body["code"], body["status"]),
                             ("Status", "Unauthorized", 401, "Failure"))

    def test_token_rotation(self):
        self.srv.admin("POST", "token", {"token": "tok-2"})
        self.assertEqual(self.get("/api/v1/nodes")[0], 401)
        self.assertEqual(self.get("/api/v1/nodes", token="tok-2")[0], 200)
        self.srv.admin("POST", "token", {"tokens": ["tok-2", TOKEN]})
        self.assertEqual(self.get("/api/v1/nodes")[0], 200)
        c = self.srv.admin("GET", "counters")
        self.assertGreaterEqual(c["unauthorized"], 1)


class Objects(Base):
    def test_create_assigns_server_fields_and_rv(self):
        rv0 = self.rv()
        st, o, _ = self.srv.request("POST", "/api/v1/namespaces/shop/services", svc("new"))
        self.assertEqual(st, 201)
        md = o["metadata"]
        self.assertEqual(md["resourceVersion"], str(rv0 + 1))
        self.assertEqual(len(md["uid"]), 36)
        self.assertRegex(md["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(md["generation"], 1)
        self.assertEqual(o["spec"]["ports"][0]["targetPort"], 80)
        self.assertTrue(30000 <= o["spec"]["ports"][0]["nodePort"] <= 32767)
        self.assertEqual(o["status"], {"loadBalancer": {}})
        st, dup, _ = self.srv.request("POST", "/api/v1/namespaces/shop/services", svc("new"))
        self.assertEqual((st, dup["reason"]), (409, "AlreadyExists"))
        st, nf, _ = self.srv.request("POST", "/api/v1/namespaces/nowhere/services", svc("x", ns="nowhere"))
        self.assertEqual((st, nf["message"]), (404, 'namespaces "nowhere" not found'))

    def test_get_missing_is_404_status(self):
        st, b, _ = self.get("/api/v1/namespaces/shop/services/nope")
        self.assertEqual((st, b["reason"], b["message"], b["details"]),
                         (404, "NotFound", 'services "nope" not found', {"name": "nope", "kind": "services"}))

    def test_status_subresource_changes_only_status(self):
        path = "/api/v1/namespaces/shop/services/web"
        _, before, _ = self.get(path)
        patch = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "Proxy"}]}},
                 "spec": {"type": "ClusterIP"}, "metadata": {"labels": {"x": "y"}}}
        st, o, _ = self.srv.request("PATCH", path + "/status", patch, ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.assertEqual(o["status"]["loadBalancer"]["ingress"], [{"ip": "203.0.113.10", "ipMode": "Proxy"}])
        self.assertEqual(o["spec"], before["spec"])
        self.assertNotIn("labels", o["metadata"])
        self.assertEqual(o["metadata"]["generation"], 1)
        self.assertEqual(o["metadata"]["resourceVersion"], str(self.rv()))
        self.assertGreater(int(o["metadata"]["resourceVersion"]), int(before["metadata"]["resourceVersion"]))
        # Clear with null, as NodeGate does.
        st, o, _ = self.srv.request("PATCH", path + "/status", {"status": {"loadBalancer": {"ingress": None}}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(o["status"], {"loadBalancer": {}})
        # The main resource ignores .status but bumps generation on spec changes.
        st, o, _ = self.srv.request("PATCH", path, {"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
                                                    "spec": {"sessionAffinity": "ClientIP"}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(o["status"], {"loadBalancer": {}})
        self.assertEqual(o["spec"]["sessionAffinity"], "ClientIP")
        self.assertEqual(o["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800)
        self.assertEqual(o["metadata"]["generation"], 2)

    def test_noop_patch_keeps_rv(self):
        path = "/api/v1/namespaces/shop/services/web"
        _, a, _ = self.get(path)
        st, b, _ = self.srv.request("PATCH", path, {"spec": {"type": "LoadBalancer"}},
                                    ctype="application/merge-patch+json")
        self.assertEqual((st, b["metadata"]["resourceVersion"]), (200, a["metadata"]["resourceVersion"]))

    def test_rv_precondition_conflict(self):
        path = "/api/v1/namespaces/shop/services/web"
        _, a, _ = self.get(path)
        rv = a["metadata"]["resourceVersion"]
        st, b, _ = self.srv.request("PATCH", path, {"metadata": {"resourceVersion": str(int(rv) - 1)},
                                                    "spec": {"sessionAffinity": "ClientIP"}},
                                    ctype="application/merge-patch+json")
        self.assertEqual((st, b["reason"]), (409, "Conflict"))
        self.assertIn("the object has been modified", b["message"])
        st, b, _ = self.srv.request("PATCH", path, {"metadata": {"resourceVersion": rv, "labels": {"a": "b"}}},
                                    ctype="application/merge-patch+json")
        self.assertEqual((st, b["metadata"]["labels"]), (200, {"a": "b"}))

    def test_invalid_bodies_are_422_and_bad_types_415(self):
        path = "/api/v1/namespaces/shop/services/web"
        st, b, _ = self.srv.request("PATCH", path + "/status",
                                    {"status": {"loadBalancer": {"ingress": [{"ip": "bogus"}]}}},
                                    ctype="application/merge-patch+json")
        self.assertEqual((st, b["reason"]), (422, "Invalid"))
        self.assertEqual(b["details"]["causes"][0]["field"], "status.loadBalancer.ingress[0].ip")
        st, b, _ = self.srv.request("PATCH", path, {"spec": {"ports": [{"port": 70000}]}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(st, 422)
        st, b, _ = self.srv.request("PATCH", path, {"spec": {}}, ctype="application/yaml")
        self.assertEqual((st, b["reason"]), (415, "UnsupportedMediaType"))
        st, b, _ = self.srv.request("PATCH", path, b"{not json", ctype="application/merge-patch+json")
        self.assertEqual(st, 400)

    def test_strategic_merge_and_json_patch(self):
        path = "/api/v1/namespaces/shop/services/web"
        smp = "application/strategic-merge-patch+json"
        self.srv.request("PATCH", path, {"metadata": {"finalizers": ["a.io/x"]}}, ctype=smp)
        st, o, _ = self.srv.request("PATCH", path, {"metadata": {"finalizers": ["b.io/y"]}}, ctype=smp)
        self.assertEqual(o["metadata"]["finalizers"], ["a.io/x", "b.io/y"])  # merge strategy
        st, o, _ = self.srv.request("PATCH", path, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}},
                                    ctype=smp)
        self.assertEqual(o["metadata"]["finalizers"], ["b.io/y"])
        # spec.ports merges on "port"; a new port appends, $patch: delete removes.
        st, o, _ = self.srv.request("PATCH", path, {"spec": {"ports": [{"name": "https", "port": 443}]}}, ctype=smp)
        self.assertEqual([p["port"] for p in o["spec"]["ports"]], [80, 443])
        st, o, _ = self.srv.request("PATCH", path, {"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}, ctype=smp)
        self.assertEqual([p["port"] for p in o["spec"]["ports"]], [443])
        jp = "application/json-patch+json"
        st, o, _ = self.srv.request("PATCH", path, [{"op": "remove", "path": "/metadata/finalizers"}], ctype=jp)
        self.assertNotIn("finalizers", o["metadata"])
        st, o, _ = self.srv.request("PATCH", path, [{"op": "test", "path": "/spec/type", "value": "NodePort"},
                                                    {"op": "replace", "path": "/spec/type", "value": "ClusterIP"}],
                                    ctype=jp)
        self.assertEqual(st, 422)

    def test_finalizer_deletion_lifecycle(self):
        path = "/api/v1/namespaces/shop/services/web"
        self.srv.request("PATCH", path, {"metadata": {"finalizers": ["nodegate.io/cleanup"]}},
                         ctype="application/merge-patch+json")
        rv = self.rv()
        resp, c = self.srv.watch("/api/v1/namespaces/shop/services?watch=1&resourceVersion=%d" % rv)
        st, o, _ = self.srv.request("DELETE", path)
        self.assertEqual(st, 202)
        self.assertIn("deletionTimestamp", o["metadata"])
        self.assertEqual(self.get(path)[0], 200)
        st, again, _ = self.srv.request("DELETE", path)
        self.assertEqual((st, again["metadata"]["resourceVersion"]), (202, o["metadata"]["resourceVersion"]))
        st, b, _ = self.srv.request("PATCH", path, {"metadata": {"finalizers": ["nodegate.io/cleanup", "new.io/f"]}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(st, 422)
        self.assertIn("no new finalizers can be added if the object is being deleted", b["message"])
        st, gone, _ = self.srv.request("PATCH", path, {"metadata": {"finalizers": None}},
                                       ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.assertEqual(self.get(path)[0], 404)
        evs = read_events(resp, n=2)
        c.close()
        self.assertEqual([e["type"] for e in evs], ["MODIFIED", "DELETED"])
        self.assertIn("deletionTimestamp", evs[0]["object"]["metadata"])
        self.assertEqual(evs[1]["object"]["metadata"]["resourceVersion"], str(rv + 2))
        # Without finalizers: gone at once; Services return the object.
        st, o, _ = self.srv.request("DELETE", "/api/v1/namespaces/shop/services/api")
        self.assertEqual((st, o["kind"], o["metadata"]["name"]), (200, "Service", "api"))
        st, o, _ = self.srv.request("DELETE", "/api/v1/nodes/worker-2")
        self.assertEqual((st, o["kind"], o["status"]), (200, "Status", "Success"))

    def test_events_create_and_patch(self):
        ev = {"metadata": {"name": "web.1", "namespace": "shop"},
              "involvedObject": {"kind": "Service", "namespace": "shop", "name": "web"},
              "reason": "EnsuredLoadBalancer", "message": "ok", "type": "Normal", "count": 1,
              "source": {"component": "nodegate"}}
        st, o, _ = self.srv.request("POST", "/api/v1/namespaces/shop/events", ev)
        self.assertEqual((st, o["kind"], o["reason"]), (201, "Event", "EnsuredLoadBalancer"))
        st, o, _ = self.srv.request("PATCH", "/api/v1/namespaces/shop/events/web.1", {"count": 2},
                                    ctype="application/strategic-merge-patch+json")
        self.assertEqual((st, o["count"]), (200, 2))
        st, lst, _ = self.get("/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name%3Dweb,source%3Dnodegate")
        self.assertEqual([e["metadata"]["name"] for e in lst["items"]], ["web.1"])
        bad = dict(ev, metadata={"name": "x", "namespace": "shop"},
                   involvedObject={"kind": "Service", "namespace": "other", "name": "web"})
        st, o, _ = self.srv.request("POST", "/api/v1/namespaces/shop/events", bad)
        self.assertEqual(st, 422)
        self.assertEqual(self.srv.admin("GET", "state")["events"][0]["count"], 2)


class Lists(Base):
    def seed_many(self, n_svc=2000, n_nodes=300):
        self.srv.admin("POST", "state", {
            "services": [svc("svc-%04d" % i, ns="ns-%02d" % (i % 20)) for i in range(n_svc)],
            "nodes": [node("node-%03d" % i, "10.1.%d.%d" % (i // 250, i % 250 + 1)) for i in range(n_nodes)]})

    def list_all(self, path, limit, between=None):
        items, pages, rvs = [], 0, set()
        cont = ""
        while True:
            q = "%s?limit=%d" % (path, limit) + ("&continue=" + cont if cont else "")
            st, l, _ = self.get(q)
            self.assertEqual(st, 200, l)
            pages += 1
            rvs.add(l["metadata"]["resourceVersion"])
            items += l["items"]
            if between and pages == 1:
                between()
            cont = l["metadata"].get("continue", "")
            if not cont:
                self.assertNotIn("remainingItemCount", l["metadata"])
                return items, pages, rvs
            self.assertEqual(l["metadata"]["remainingItemCount"] > 0, True)

    def test_2000_services_300_nodes_in_pages_of_500(self):
        self.seed_many()
        t0 = time.time()
        items, pages, rvs = self.list_all("/api/v1/services", 500)
        self.assertEqual((len(items), pages, len(rvs)), (2000, 4, 1))
        keys = [(i["metadata"]["namespace"] + "/" + i["metadata"]["name"]) for i in items]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(set(keys)), 2000)
        self.assertNotIn("kind", items[0])  # list items carry no kind/apiVersion, like the real server
        nodes, pages, _ = self.list_all("/api/v1/nodes", 500)
        self.assertEqual((len(nodes), pages), (300, 1))
        ns_items, _, _ = self.list_all("/api/v1/namespaces/ns-03/services", 30)
        self.assertEqual(len(ns_items), 100)
        self.assertLess(time.time() - t0, 30)

    def test_pages_are_a_consistent_snapshot(self):
        self.seed_many(1200, 0)

        def change():
            self.srv.admin("DELETE", "objects/services/ns-19/svc-1199")
            self.srv.admin("PATCH", "objects/services/ns-18/svc-1198", {"metadata": {"labels": {"changed": "1"}}})
            self.srv.admin("POST", "objects/services", svc("zz-new", ns="ns-19"))
        items, pages, rvs = self.list_all("/api/v1/services", 500, between=change)
        names = {i["metadata"]["name"]: i for i in items}
        self.assertEqual((pages, len(rvs), len(items)), (3, 1, 1200))
        self.assertIn("svc-1199", names)
        self.assertNotIn("zz-new", names)
        self.assertNotIn("labels", names["svc-1198"]["metadata"])
        items, _, _ = self.list_all("/api/v1/services", 500)
        names = {i["metadata"]["name"] for i in items}
        self.assertEqual(("svc-1199" in names, "zz-new" in names, len(items)), (False, True, 1200))

    def test_expired_and_invalid_continue(self):
        self.seed_many(30, 0)
        st, l, _ = self.get("/api/v1/services?limit=10")
        cont = l["metadata"]["continue"]
        self.srv.admin("POST", "objects/services", svc("later"))
        self.srv.admin("POST", "compact")
        st, b, _ = self.get("/api/v1/services?limit=10&continue=" + cont)
        self.assertEqual((st, b["reason"], b["code"]), (410, "Expired", 410))
        self.assertIn("continue", b["metadata"])  # the inconsistent-continue token, like the real server
        st, b, _ = self.get("/api/v1/services?limit=10&continue=" + b["metadata"]["continue"])
        self.assertEqual(st, 200)
        self.assertEqual(self.get("/api/v1/services?limit=10&continue=garbage!")[0], 400)
        self.assertEqual(self.get("/api/v1/services?limit=10&continue=%s&resourceVersion=5" % cont)[0], 400)

    def test_history_overflow_expires_continue(self):
        self.seed_many(20, 0)
        self.srv.admin("POST", "config", {"history_size": 5})
        st, l, _ = self.get("/api/v1/services?limit=5")
        for i in range(6):
            self.srv.admin("PATCH", "objects/services/ns-00/svc-0000", {"metadata": {"labels": {"i": str(i)}}})
        self.assertEqual(self.get("/api/v1/services?limit=5&continue=" + l["metadata"]["continue"])[0], 410)

    def test_selectors(self):
        self.srv.admin("POST", "objects/services", svc("lab", labels={"app": "x", "tier": "fe"}))
        st, l, _ = self.get("/api/v1/services?fieldSelector=metadata.name%3Dweb")
        self.assertEqual([i["metadata"]["name"] for i in l["items"]], ["web"])
        st, l, _ = self.get("/api/v1/services?fieldSelector=metadata.namespace%3Dshop,metadata.name!%3Dweb")
        self.assertEqual([i["metadata"]["name"] for i in l["items"]], ["api", "lab"])
        st, l, _ = self.get("/api/v1/services?labelSelector=app%3Dx,tier+in+(fe,be)")
        self.assertEqual([i["metadata"]["name"] for i in l["items"]], ["lab"])
        st, l, _ = self.get("/api/v1/services?labelSelector=!app")
        self.assertEqual([i["metadata"]["name"] for i in l["items"]], ["api", "web"])
        st, b, _ = self.get("/api/v1/services?fieldSelector=spec.foo%3Dbar")
        self.assertEqual(st, 400)
        self.assertIn("field label not supported: spec.foo", b["message"])
        st, l, _ = self.get("/api/v1/nodes?fieldSelector=metadata.name%3Dworker-2")
        self.assertEqual([i["metadata"]["name"] for i in l["items"]], ["worker-2"])

    def test_exact_rv_list(self):
        rv = self.rv()
        self.srv.admin("DELETE", "objects/services/shop/web")
        st, l, _ = self.get("/api/v1/services?resourceVersion=%d&resourceVersionMatch=Exact" % rv)
        self.assertEqual((l["metadata"]["resourceVersion"], sorted(i["metadata"]["name"] for i in l["items"])),
                         (str(rv), ["api", "web"]))
        st, l, _ = self.get("/api/v1/services")
        self.assertEqual(sorted(i["metadata"]["name"] for i in l["items"]), ["api"])

    def test_table_for_kubectl(self):
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        st, t, r = self.get("/api/v1/services", headers={"Accept": accept})
        self.assertEqual((t["kind"], [c["name"] for c in t["columnDefinitions"]][:6]),
                         ("Table", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]))
        web = t["rows"][1]["cells"]
        self.assertEqual((web[0], web[1], web[3]), ("web", "LoadBalancer", "<pending>"))
        self.assertRegex(web[4], r"^80:3\d{4}/TCP$")
        self.assertEqual(t["rows"][0]["object"]["kind"], "PartialObjectMetadata")


class Watches(Base):
    def test_exact_rv_replay_then_live(self):
        rv = self.rv()
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"a": "1"}}})
        self.srv.admin("POST", "objects/services", svc("new"))
        self.srv.admin("DELETE", "objects/services/shop/api")
        self.srv.admin("PATCH", "objects/nodes/worker-1", {"metadata": {"labels": {"n": "1"}}})
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % rv)
        self.assertEqual((resp.status, resp.getheader("Transfer-Encoding")), (200, "chunked"))
        evs = read_events(resp, n=3)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("MODIFIED", "web"), ("ADDED", "new"), ("DELETED", "api")])
        self.assertEqual([int(e["object"]["metadata"]["resourceVersion"]) for e in evs], [rv + 1, rv + 2, rv + 3])
        self.assertEqual(evs[0]["object"]["kind"], "Service")
        self.srv.admin("PATCH", "objects/services/shop/new", {"metadata": {"labels": {"b": "2"}}})
        live = read_events(resp, n=1)
        c.close()
        self.assertEqual((live[0]["type"], live[0]["object"]["metadata"]["resourceVersion"]), ("MODIFIED", str(rv + 5)))

    def test_rv_zero_and_empty_give_synthetic_added(self):
        for rv in ("0", ""):
            resp, c = self.srv.watch("/api/v1/nodes?watch=true&resourceVersion=" + rv)
            evs = read_events(resp, n=2)
            c.close()
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                             [("ADDED", "worker-1"), ("ADDED", "worker-2")])

    def test_expired_rv_is_in_stream_410(self):
        rv = self.rv()
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"a": "1"}}})
        self.srv.admin("POST", "compact")
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % rv)
        self.assertEqual(resp.status, 200)
        evs = read_events(resp)
        c.close()
        self.assertEqual(len(evs), 1)
        o = evs[0]["object"]
        self.assertEqual((evs[0]["type"], o["kind"], o["status"], o["reason"], o["code"]),
                         ("ERROR", "Status", "Failure", "Expired", 410))
        self.assertIn("too old resource version: %d" % rv, o["message"])
        # The current RV is still watchable.
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1" % self.rv())
        self.assertEqual(read_events(resp), [])
        c.close()

    def test_bookmarks_only_carry_rv(self):
        rv = self.rv()
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d&allowWatchBookmarks=true" % rv)
        evs = read_events(resp, n=1, max_time=3)
        c.close()
        self.assertEqual(evs[0]["type"], "BOOKMARK")
        self.assertEqual(evs[0]["object"]["metadata"], {"resourceVersion": str(rv)})
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1" % rv)
        self.assertEqual(read_events(resp, max_time=3), [])  # no bookmarks unless asked for
        c.close()

    def test_timeout_seconds_ends_stream_cleanly(self):
        t0 = time.time()
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1" % self.rv())
        data = resp.read()  # http.client raises IncompleteRead if the terminating chunk is missing
        c.close()
        self.assertEqual(data, b"")
        self.assertTrue(0.9 <= time.time() - t0 < 3, time.time() - t0)

    def test_send_initial_events_is_400(self):
        st, b, _ = self.get("/api/v1/services?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
        self.assertEqual((st, b["kind"], b["code"]), (400, "Status", 400))

    def test_selector_transitions(self):
        rv = self.rv()
        resp, c = self.srv.watch("/api/v1/services?watch=1&labelSelector=lb%%3Dyes&resourceVersion=%d" % rv)
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"lb": "yes"}}})
        self.srv.admin("PATCH", "objects/services/shop/api", {"metadata": {"labels": {"other": "1"}}})
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"lb": "no"}}})
        evs = read_events(resp, n=2)
        c.close()
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                         [("ADDED", "web"), ("DELETED", "web")])

    def test_future_rv_is_504_too_large(self):
        st, b, _ = self.get("/api/v1/services?watch=1&resourceVersion=%d" % (self.rv() + 1000))
        self.assertEqual((st, b["details"]["causes"][0]["reason"]), (504, "ResourceVersionTooLarge"))


class Faults(Base):
    def test_http_429_with_retry_after_then_ok(self):
        self.srv.admin("POST", "faults", {"type": "http_error", "code": 429, "retry_after": 2,
                                          "verb": "list", "resource": "services", "count": 2})
        for _ in range(2):
            st, b, r = self.get("/api/v1/services")
            self.assertEqual((st, b["reason"], r.getheader("Retry-After")), (429, "TooManyRequests", "2"))
        self.assertEqual(self.get("/api/v1/nodes")[0], 200)  # other resources unaffected
        self.assertEqual(self.get("/api/v1/services")[0], 200)
        self.assertEqual(self.srv.admin("GET", "faults")["faults"], [])

    def test_http_500_and_410_by_path_and_verb(self):
        f = self.srv.admin("POST", "faults", {"type": "http_error", "code": 500, "verb": "patch",
                                              "path": "/status$"})
        st, b, _ = self.srv.request("PATCH", "/api/v1/namespaces/shop/services/web/status",
                                    {"status": {}}, ctype="application/merge-patch+json")
        self.assertEqual((st, b["reason"]), (500, "InternalError"))
        self.assertEqual(self.get("/api/v1/namespaces/shop/services/web")[0], 200)
        self.srv.admin("DELETE", "faults/%d" % f["id"])
        self.srv.admin("POST", "faults", {"type": "http_error", "code": 410, "verb": "list", "count": 1})
        st, b, _ = self.get("/api/v1/services?limit=1")
        self.assertEqual((st, b["reason"]), (410, "Expired"))

    def test_delay(self):
        self.srv.admin("POST", "faults", {"type": "delay", "seconds": 0.6, "count": 1})
        t0 = time.time()
        self.assertEqual(self.get("/api/v1/nodes")[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.6)

    def test_cut_watch_mid_line(self):
        self.srv.admin("POST", "faults", {"type": "cut_watch", "after_events": 1, "count": 1})
        rv = self.rv()
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"a": "1"}}})
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"a": "2"}}})
        c = self.srv.conn()
        c.request("GET", "/api/v1/services?watch=1&resourceVersion=%d" % rv,
                  headers={"Authorization": "Bearer " + TOKEN})
        resp = c.getresponse()
        first = resp.readline()
        self.assertEqual(json.loads(first)["object"]["metadata"]["labels"], {"a": "1"})
        with self.assertRaises(http.client.IncompleteRead) as cm:
            resp.read()
        partial = cm.exception.partial
        self.assertTrue(partial and not partial.endswith(b"\n"), partial)
        with self.assertRaises(ValueError):
            json.loads(partial)
        c.close()
        self.assertEqual(self.srv.admin("GET", "counters")["watches_cut"], 1)

    def test_watch_expired_fault(self):
        self.srv.admin("POST", "faults", {"type": "watch_expired", "count": 1})
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % self.rv())
        evs = read_events(resp)
        c.close()
        self.assertEqual((resp.status, evs[0]["type"], evs[0]["object"]["code"]), (200, "ERROR", 410))

    def test_duplicate_events(self):
        self.srv.admin("POST", "faults", {"type": "duplicate_events", "count": 1})
        rv = self.rv()
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"labels": {"a": "1"}}})
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % rv)
        evs = read_events(resp, n=2)
        c.close()
        self.assertEqual(len(evs), 2)
        self.assertEqual(evs[0], evs[1])

    def test_close_watches(self):
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % self.rv())
        deadline = time.time() + 5
        while not self.srv.admin("GET", "watches")["watches"] and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.srv.admin("POST", "close-watches")["closed"], 1)
        self.assertEqual(resp.read(), b"")  # clean end of stream
        c.close()

    def test_down_refuses_api_but_not_admin(self):
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % self.rv())
        deadline = time.time() + 5
        while not self.srv.admin("GET", "watches")["watches"] and time.time() < deadline:
            time.sleep(0.05)
        f = self.srv.admin("POST", "faults", {"type": "down"})
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            resp.read()  # the open watch dies without a terminating chunk
        c.close()
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected, OSError)):
            self.get("/api/v1/services")
        self.assertTrue(self.srv.admin("GET", "healthz")["ok"])
        self.srv.admin("DELETE", "faults/%d" % f["id"])
        self.assertEqual(self.get("/api/v1/services")[0], 200)

    def test_huge_annotation_and_gzip(self):
        self.srv.admin("POST", "huge", {"resource": "services", "namespace": "shop", "name": "web",
                                        "bytes": 1 << 20})
        st, o, r = self.get("/api/v1/namespaces/shop/services/web")
        self.assertEqual(len(o["metadata"]["annotations"]["fake.nodegate.io/huge"]), 1 << 20)
        self.assertIsNone(r.getheader("Content-Encoding"))
        st, o, r = self.get("/api/v1/services", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((st, r.getheader("Content-Encoding")), (200, "gzip"))
        self.assertEqual(len(o["items"]), 2)


class RequestLog(Base):
    def test_log_lines(self):
        self.srv.request("PATCH", "/api/v1/namespaces/shop/services/web/status",
                         {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}},
                         ctype="application/merge-patch+json", headers={"User-Agent": "nodegate-test/1"})
        time.sleep(0.1)
        with open(self.srv.log_file) as f:
            lines = [json.loads(l) for l in f]
        last = [l for l in lines if l["method"] == "PATCH"][-1]
        self.assertEqual((last["path"], last["status"], last["content_type"], last["user_agent"], last["verb"]),
                         ("/api/v1/namespaces/shop/services/web/status", 200, "application/merge-patch+json",
                          "nodegate-test/1", "patch"))
        self.assertEqual(last["body"], {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})
        reqs = self.srv.admin("GET", "requests?since=%d" % (last["seq"] - 1))["requests"]
        self.assertEqual(reqs[0]["seq"], last["seq"])


class TlsAndRestart(Base):
    TLS = True

    def test_tls_with_ca(self):
        st, l, _ = self.get("/api/v1/nodes")
        self.assertEqual((st, len(l["items"])), (200, 2))
        ctx = ssl.create_default_context()  # system CAs only: must not trust the fake
        c = http.client.HTTPSConnection("127.0.0.1", self.srv.port, context=ctx, timeout=5)
        with self.assertRaises(ssl.SSLCertVerificationError):
            c.request("GET", "/version")
        c.close()

    def test_restart_from_dump_on_same_port(self):
        self.srv.admin("PATCH", "objects/services/shop/web", {"metadata": {"finalizers": ["nodegate.io/cleanup"]}})
        dump = self.srv.admin("GET", "state?history=1")
        path = os.path.join(self.tmp, "dump.json")
        with open(path, "w") as f:
            json.dump(dump, f)
        port = self.srv.port
        self.srv.stop()
        self.assertNotEqual(self.srv.proc.poll(), None)
        type(self).srv = FakeServer(self.tmp, tls=True, port=port, state=path)
        self.assertEqual(self.srv.port, port)
        st, o, _ = self.get("/api/v1/namespaces/shop/services/web")
        before = [s for s in dump["services"] if s["metadata"]["name"] == "web"][0]
        self.assertEqual(o, before)
        # The dumped history came back: a watch from just before the finalizer patch replays it.
        resp, c = self.srv.watch("/api/v1/services?watch=1&resourceVersion=%d" % (int(dump["resourceVersion"]) - 1))
        evs = read_events(resp, n=1)
        c.close()
        self.assertEqual((evs[0]["type"], evs[0]["object"]["metadata"]["finalizers"]),
                         ("MODIFIED", ["nodegate.io/cleanup"]))
        st, o, _ = self.srv.request("PATCH", "/api/v1/namespaces/shop/services/web",
                                    {"metadata": {"labels": {"after": "restart"}}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(int(o["metadata"]["resourceVersion"]), int(dump["resourceVersion"]) + 1)


if __name__ == "__main__":
    unittest.main()
