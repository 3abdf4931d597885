#!/usr/bin/python3
"""A faithful fake of the Kubernetes API server, for NodeGate's controller tests.

Scope: core/v1 Services (namespaced, status subresource), Nodes (cluster-scoped, status
subresource), Events (namespaced) and Namespaces (read-only through the API). Python 3
standard library only.

What it reproduces, because clients depend on it:
  * TLS + bearer tokens (401 Status when missing or wrong; token rotation via the admin API).
  * One global, monotonically increasing resourceVersion (RV); every change gets a new RV;
    a no-op write does not (the real server skips the etcd write).
  * LIST with limit/continue: a continue token encodes the snapshot RV and the last key,
    exactly like the real server's; pages after the first are served from that snapshot,
    reconstructed from the bounded event history. A token older than the history
    ("compaction horizon") is 410 Expired. Items are sorted by etcd key (ns/name).
  * WATCH: chunked `{"type":..,"object":..}\\n` lines; exact-RV replay from the bounded
    history; RV older than the history -> HTTP 200 then an in-stream ERROR 410 Expired;
    RV "" / "0" -> synthetic ADDED for current objects, then live; BOOKMARKs carrying only
    metadata.resourceVersion; timeoutSeconds ends the stream cleanly; selectors turn
    MODIFIED into ADDED/DELETED when an object enters/leaves the selection;
    sendInitialEvents=true -> 400.
  * PATCH (merge, strategic merge, JSON patch), PUT, POST, DELETE with finalizers
    (deletionTimestamp + MODIFIED, then DELETED when the last finalizer goes), 404/409/422
    Status bodies shaped like the real ones.
  * Discovery for kubectl (/version, /api, /api/v1, /apis) and server-side Tables
    (kubectl get's Accept header), gzip of large responses.

Everything under /_fake/ is the admin API for tests (no auth): objects, faults, counters,
request log, compaction, token, config. See README.md next to this file.
"""

import argparse
import base64
import copy
import gzip
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-nodegate-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

GZIP_THRESHOLD = 128 * 1024          # the real server compresses responses above 128 KiB
ANNOTATIONS_LIMIT = 256 * 1024       # metadata.annotations total size limit (validation)
TOO_LARGE_RV_WAIT = 3.0              # the watch cache waits this long for a future RV
DEFAULT_NAMESPACES = ["default", "kube-node-lease", "kube-public", "kube-system"]
JSON_CT = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def deep(obj):
    return copy.deepcopy(obj)


# --------------------------------------------------------------------------------------
# Status bodies and errors
# --------------------------------------------------------------------------------------

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_body(code, message, reason=None, details=None, metadata=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
            "status": "Failure", "message": message,
            "reason": reason if reason is not None else REASONS.get(code, ""),
            "code": code}
    if details:
        body["details"] = details
    if body["reason"] == "":
        del body["reason"]
    return body


class ApiError(Exception):
    """An error answered to the client as a Status object."""

    def __init__(self, code, message, reason=None, details=None, headers=None, metadata=None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason, details, metadata)
        self.headers = headers or {}


def not_found(res, name):
    return ApiError(404, '%s "%s" not found' % (res.plural, name),
                    details={"name": name, "kind": res.plural})


def conflict(res, name):
    return ApiError(409, 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                         'please apply your changes to the latest version and try again'
                    % (res.plural, name), details={"name": name, "kind": res.plural})


def expired(message):
    return ApiError(410, message, reason="Expired")


def invalid(res, name, causes):
    """causes: list of (field, cause_reason, message). Shaped like the real 422."""
    parts = ["%s: %s" % (f, m) for f, _, m in causes]
    msg = '%s "%s" is invalid: ' % (res.kind, name)
    msg += parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, msg, details={
        "name": name, "kind": res.kind,
        "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes]})


# --------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------

class Resource:
    def __init__(self, plural, singular, kind, namespaced, short_names, verbs, has_status,
                 field_labels, returns_deleted_object, api_writable=True):
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = short_names
        self.verbs = verbs
        self.has_status = has_status
        self.field_labels = field_labels
        self.returns_deleted_object = returns_deleted_object
        self.api_writable = api_writable

    def key(self, ns, name):
        return "%s/%s" % (ns, name) if self.namespaced else name


ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
RESOURCES = {
    "services": Resource("services", "service", "Service", True, ["svc"], ALL_VERBS, True,
                         ["metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"],
                         returns_deleted_object=True),
    "nodes": Resource("nodes", "node", "Node", False, ["no"], ALL_VERBS, True,
                      ["metadata.name", "spec.unschedulable"], returns_deleted_object=False),
    "events": Resource("events", "event", "Event", True, ["ev"], ALL_VERBS, False,
                       ["metadata.name", "metadata.namespace", "involvedObject.kind",
                        "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                        "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source",
                        "type"], returns_deleted_object=False),
    "namespaces": Resource("namespaces", "namespace", "Namespace", False, ["ns"],
                           ["get", "list", "watch"], True, ["metadata.name", "status.phase"],
                           returns_deleted_object=False, api_writable=False),
}


def field_value(obj, field):
    if field == "source":
        return str((obj.get("source") or {}).get("component", ""))
    if field == "spec.unschedulable":
        return "true" if (obj.get("spec") or {}).get("unschedulable") else "false"
    cur = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# --------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------

class LabelSelector:
    """Kubernetes label selector syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b)."""

    _KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"

    def __init__(self, text):
        self.text = text or ""
        self.reqs = []
        for part in self._split(self.text):
            part = part.strip()
            if not part:
                raise ValueError("empty requirement")
            m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % self._KEY, part)
            if m:
                vals = {v.strip() for v in m.group(3).split(",")}
                self.reqs.append((m.group(1), m.group(2), vals))
                continue
            m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)" % self._KEY, part)
            if m:
                op = "!=" if m.group(2) == "!=" else "="
                self.reqs.append((m.group(1), op, {m.group(3)}))
                continue
            m = re.fullmatch(r"!\s*(%s)" % self._KEY, part)
            if m:
                self.reqs.append((m.group(1), "!exists", None))
                continue
            m = re.fullmatch(r"(%s)" % self._KEY, part)
            if m:
                self.reqs.append((m.group(1), "exists", None))
                continue
            raise ValueError("unable to parse requirement: %r" % part)

    @staticmethod
    def _split(text):
        if not text.strip():
            return []
        out, depth, cur = [], 0, ""
        for ch in text:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                out.append(cur)
                cur = ""
            else:
                cur += ch
        out.append(cur)
        return out

    def matches(self, obj):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, op, vals in self.reqs:
            present = key in labels
            if op == "exists" and not present:
                return False
            if op == "!exists" and present:
                return False
            if op in ("=", "in") and (not present or labels[key] not in vals):
                return False
            if op in ("!=", "notin") and present and labels[key] in vals:
                return False
        return True


class FieldSelector:
    def __init__(self, text, res):
        self.text = text or ""
        self.reqs = []
        for part in (self.text.split(",") if self.text.strip() else []):
            m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part)
            if not m:
                raise ApiError(400, "invalid selector: '%s'; can't understand '%s'" % (self.text, part))
            field, op, val = m.group(1), m.group(2), m.group(3)
            if field not in res.field_labels:
                raise ApiError(400, 'Unable to find "/v1, Resource=%s" that match label selector "", '
                                    'field selector "%s": field label not supported: %s'
                               % (res.plural, self.text, field))
            self.reqs.append((field, op != "!=", val))

    def matches(self, obj):
        return all((field_value(obj, f) == v) == eq for f, eq, v in self.reqs)


# --------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return deep(patch)
    result = deep(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


class PatchError(Exception):
    pass


def _ptr_parts(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _ptr_walk(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise PatchError("path not found: %s" % p)
            cur = cur[p]
        elif isinstance(cur, list):
            if not p.isdigit() or int(p) >= len(cur):
                raise PatchError("invalid index %s" % p)
            cur = cur[int(p)]
        else:
            raise PatchError("cannot descend into scalar at %s" % p)
    return cur


def _ptr_get(doc, path):
    return _ptr_walk(doc, _ptr_parts(path))


def _ptr_add(doc, path, value):
    parts = _ptr_parts(path)
    if not parts:
        return deep(value)
    parent = _ptr_walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = deep(value)
    elif isinstance(parent, list):
        if last == "-":
            parent.append(deep(value))
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), deep(value))
        else:
            raise PatchError("invalid index %s" % last)
    else:
        raise PatchError("cannot add to scalar")
    return doc


def _ptr_remove(doc, path):
    parts = _ptr_parts(path)
    if not parts:
        raise PatchError("cannot remove the root")
    parent = _ptr_walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("unable to remove nonexistent key: %s" % last)
        return parent.pop(last)
    if isinstance(parent, list):
        if not last.isdigit() or int(last) >= len(parent):
            raise PatchError("invalid index %s" % last)
        return parent.pop(int(last))
    raise PatchError("cannot remove from scalar")


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = deep(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("invalid operation %r" % (op,))
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _ptr_add(doc, path, op.get("value"))
        elif kind == "remove":
            _ptr_remove(doc, path)
        elif kind == "replace":
            _ptr_get(doc, path)
            if _ptr_parts(path):
                _ptr_remove(doc, path)
            doc = _ptr_add(doc, path, op.get("value"))
        elif kind == "move":
            val = _ptr_remove(doc, op["from"])
            doc = _ptr_add(doc, path, val)
        elif kind == "copy":
            doc = _ptr_add(doc, path, deep(_ptr_get(doc, op["from"])))
        elif kind == "test":
            if _ptr_get(doc, path) != op.get("value"):
                raise PatchError("testing value %s failed" % path)
        else:
            raise PatchError("unexpected kind: %s" % kind)
    return doc


# Strategic merge patch metadata from the Go struct tags of core/v1 (patchStrategy /
# patchMergeKey). Paths use "[]" for list elements. A list not listed here is atomic
# (replaced), like the real server.
SMP_LISTS = {
    "metadata.finalizers": ("merge", None),
    "metadata.ownerReferences": ("merge", "uid"),
    "spec.ports": ("merge", "port"),
    "status.conditions": ("merge", "type"),
    "status.addresses": ("merge", "type"),
    "spec.podCIDRs": ("merge", None),
}


def strategic_merge_patch(original, patch, path=""):
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    directive = patch.get("$patch")
    if directive == "replace":
        return _smp_strip({k: v for k, v in patch.items() if k != "$patch"}, path)
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError("unknown patch type: %s in map: %s" % (directive, path))
    result = deep(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k[len("$deleteFromPrimitiveList/"):]
            if isinstance(result.get(field), list) and isinstance(v, list):
                result[field] = [x for x in result[field] if x not in v]
            continue
        sub = (path + "." + k) if path else k
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge_patch(result.get(k), v, sub)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list) and sub in SMP_LISTS:
            result[k] = _smp_merge_list(result.get(k), v, sub)
        else:
            result[k] = _smp_strip(deep(v), sub)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_strip(value, path):
    """Applies a patch value to nothing: directives removed, nested maps kept."""
    if isinstance(value, dict):
        return strategic_merge_patch({}, value, path)
    if isinstance(value, list):
        return [_smp_strip(x, path + "[]") for x in value
                if not (isinstance(x, dict) and x.get("$patch") in ("delete", "replace"))]
    return value


def _smp_merge_list(orig, patch, path):
    strategy, key = SMP_LISTS[path]
    orig = deep(orig) if isinstance(orig, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_smp_strip(x, path + "[]") for x in patch
                if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if key is None:
        out = list(orig)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    out = orig
    for x in patch:
        if not isinstance(x, dict) or key not in x:
            raise PatchError("map: %r does not contain declared merge key: %s" % (x, key))
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == x[key]), None)
        if x.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_smp_strip(x, path + "[]"))
        else:
            out[idx] = strategic_merge_patch(out[idx], x, path + "[]")
    return out


# --------------------------------------------------------------------------------------
# Defaulting and validation (the parts NodeGate's controller can trip over)
# --------------------------------------------------------------------------------------

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Allocator:
    """ClusterIPs and NodePorts, deterministic so tests can predict them."""

    node_port_range = (30000, 32767)  # --service-node-port-range

    def __init__(self):
        self.next_ip = 10
        self.next_port = self.node_port_range[0]

    def cluster_ip(self, used):
        while True:
            self.next_ip += 1
            ip = "10.96.%d.%d" % (self.next_ip // 250, self.next_ip % 250 + 1)
            if ip not in used:
                return ip

    def node_port(self, used):
        lo, hi = self.node_port_range
        for _ in range(hi - lo + 1):
            p = self.next_port
            self.next_port = lo if self.next_port >= hi else self.next_port + 1
            if p not in used:
                return p
        raise ApiError(500, "failed to allocate a nodePort: range is full (%d-%d)" % (lo, hi))


NODE_INFO_FIELDS = ("architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
                    "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID")


def default_object(res, obj, store):
    """Fills what the real server defaults and allocates. Idempotent."""
    md = obj.setdefault("metadata", {})
    obj["apiVersion"] = "v1"
    obj["kind"] = res.kind
    if res.plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        stype = spec["type"]
        if stype != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            if not spec.get("clusterIP"):
                spec["clusterIP"] = store.allocator.cluster_ip(store.used_cluster_ips())
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv6" if ":" in spec["clusterIP"] else "IPv4"]
                            if spec["clusterIP"] != "None" else ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("sessionAffinity") == "ClientIP":
            spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {}) \
                .setdefault("timeoutSeconds", 10800)
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "targetPort" not in p and "port" in p:
                    p["targetPort"] = p["port"]
        if stype in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            if stype == "LoadBalancer":
                spec.setdefault("allocateLoadBalancerNodePorts", True)
            if stype == "NodePort" or spec.get("allocateLoadBalancerNodePorts", True):
                used = store.used_node_ports()
                for p in spec.get("ports") or []:
                    if isinstance(p, dict) and not p.get("nodePort"):
                        p["nodePort"] = store.allocator.node_port(used)
                        used.add(p["nodePort"])
            if stype == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local" \
                    and not spec.get("healthCheckNodePort"):
                spec["healthCheckNodePort"] = store.allocator.node_port(store.used_node_ports())
        else:
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
            for f in ("externalTrafficPolicy", "healthCheckNodePort",
                      "allocateLoadBalancerNodePorts", "loadBalancerClass"):
                spec.pop(f, None)
        st = obj.setdefault("status", {})
        st.setdefault("loadBalancer", {})
    elif res.plural == "nodes":
        # Go serializes non-pointer structs even when empty: every real Node carries these.
        obj.setdefault("spec", {})
        st = obj.setdefault("status", {})
        st.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
        info = st.setdefault("nodeInfo", {})
        for f in NODE_INFO_FIELDS:
            info.setdefault(f, "")
    elif res.plural == "events":
        obj.setdefault("involvedObject", {})
        obj.setdefault("source", {})
        for f in ("firstTimestamp", "lastTimestamp", "eventTime"):
            obj.setdefault(f, None)
        for f in ("reportingComponent", "reportingInstance"):
            obj.setdefault(f, "")
    elif res.plural == "namespaces":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    return obj


def validate(res, obj, old=None):
    """Returns nothing or raises a 422 ApiError with one cause per problem."""
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    causes = []

    def bad(field, value, msg, reason="FieldValueInvalid"):
        if reason == "FieldValueInvalid":
            causes.append((field, reason, "Invalid value: %s: %s" % (json.dumps(value), msg)))
        elif reason == "FieldValueRequired":
            causes.append((field, reason, "Required value" + (": " + msg if msg else "")))
        elif reason == "FieldValueNotSupported":
            causes.append((field, reason, 'Unsupported value: %s: supported values: %s'
                           % (json.dumps(value), msg)))
        else:
            causes.append((field, reason, msg))

    if not isinstance(obj.get("metadata"), dict):
        raise invalid(res, name, [("metadata", "FieldValueRequired", "Required value")])
    if not name:
        bad("metadata.name", name, "name or generateName is required", "FieldValueRequired")
    elif res.plural == "services" and (len(name) > 63 or not DNS1035.match(name)):
        bad("metadata.name", name, "a DNS-1035 label must consist of lower case alphanumeric "
            "characters or '-', start with an alphabetic character, and end with an alphanumeric character")
    elif res.plural != "services" and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
        bad("metadata.name", name, "a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
    for f in ("labels", "annotations"):
        v = md.get(f)
        if v is not None and (not isinstance(v, dict) or
                              not all(isinstance(x, str) for x in v.values())):
            bad("metadata." + f, v, "must be a map of strings")
    ann = md.get("annotations") or {}
    if isinstance(ann, dict):
        size = sum(len(k) + len(str(v)) for k, v in ann.items())
        if size > ANNOTATIONS_LIMIT:
            causes.append(("metadata.annotations", "FieldValueTooLong",
                           "Too long: must have at most %d bytes" % ANNOTATIONS_LIMIT))
    fins = md.get("finalizers")
    if fins is not None and (not isinstance(fins, list) or not all(isinstance(x, str) for x in fins)):
        bad("metadata.finalizers", fins, "must be a list of strings")
    if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
        oldf = set((old.get("metadata") or {}).get("finalizers") or [])
        newf = set(fins or []) if isinstance(fins, list) else set()
        if newf - oldf:
            causes.append(("metadata.finalizers", "FieldValueForbidden",
                           "Forbidden: no new finalizers can be added if the object is being deleted, "
                           "found new finalizers %s" % json.dumps(sorted(newf - oldf))))

    if res.plural == "services":
        _validate_service(obj, old, bad)
    elif res.plural == "events":
        inv = obj.get("involvedObject")
        if not isinstance(inv, dict):
            bad("involvedObject", inv, "", "FieldValueRequired")
        else:
            ns = md.get("namespace", "")
            ins = inv.get("namespace", "")
            if not ins and ns not in ("", "default"):
                bad("involvedObject.namespace", ins, "does not match event.namespace")
            elif ins and ins != ns:
                bad("involvedObject.namespace", ins, "does not match event.namespace")
    elif res.plural == "nodes":
        for i, t in enumerate(((obj.get("spec") or {}).get("taints")) or []):
            if not isinstance(t, dict) or t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                bad("spec.taints[%d].effect" % i, (t or {}).get("effect") if isinstance(t, dict) else t,
                    '"NoExecute", "NoSchedule", "PreferNoSchedule"', "FieldValueNotSupported")
    if causes:
        raise invalid(res, name, causes)


def _valid_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except (ValueError, TypeError):
        return False


def _validate_service(obj, old, bad):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        bad("spec", spec, "", "FieldValueRequired")
        return
    stype = spec.get("type")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        bad("spec.type", stype, '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            "FieldValueNotSupported")
    ports = spec.get("ports")
    if ports is None:
        ports = []
    if not isinstance(ports, list):
        bad("spec.ports", ports, "must be a list")
        ports = []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        bad("spec.ports", None, "", "FieldValueRequired")
    names = set()
    for i, p in enumerate(ports):
        base = "spec.ports[%d]" % i
        if not isinstance(p, dict):
            bad(base, p, "must be an object")
            continue
        pname = p.get("name", "")
        if len(ports) > 1 and not pname:
            bad(base + ".name", pname, "", "FieldValueRequired")
        if pname and pname in names:
            causes_msg = "Duplicate value: %s" % json.dumps(pname)
            bad(base + ".name", pname, causes_msg, "FieldValueDuplicate")
        names.add(pname)
        port = p.get("port")
        if not _is_int(port) or not 1 <= port <= 65535:
            bad(base + ".port", port, "must be between 1 and 65535, inclusive")
        if p.get("protocol") not in ("TCP", "UDP", "SCTP"):
            bad(base + ".protocol", p.get("protocol"), '"SCTP", "TCP", "UDP"', "FieldValueNotSupported")
        np_ = p.get("nodePort", 0)
        lo, hi = Allocator.node_port_range
        if not _is_int(np_) or not (np_ == 0 or lo <= np_ <= hi):
            bad(base + ".nodePort", np_, "provided port is not in the valid range. The range of valid ports is %d-%d"
                % (lo, hi))
        tp = p.get("targetPort")
        if tp is not None and not (_is_int(tp) or isinstance(tp, str)):
            bad(base + ".targetPort", tp, "must be an int or a string")
    if spec.get("sessionAffinity") not in ("None", "ClientIP"):
        bad("spec.sessionAffinity", spec.get("sessionAffinity"), '"ClientIP", "None"', "FieldValueNotSupported")
    t = (((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}).get("timeoutSeconds")
    if t is not None and (not _is_int(t) or not 1 <= t <= 86400):
        bad("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t, "must be greater than 0 and less than 86400")
    etp = spec.get("externalTrafficPolicy")
    if etp is not None and etp not in ("Cluster", "Local"):
        bad("spec.externalTrafficPolicy", etp, '"Cluster", "Local"', "FieldValueNotSupported")
    for i, r in enumerate(spec.get("loadBalancerSourceRanges") or []):
        try:
            ipaddress.ip_network(r, strict=False)
        except (ValueError, TypeError):
            bad("spec.loadBalancerSourceRanges[%d]" % i, r, "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ")
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
        pass
    if old is not None:
        oc = (old.get("spec") or {}).get("clusterIP")
        if oc and oc != spec.get("clusterIP") and (old.get("spec") or {}).get("type") != "ExternalName" \
                and stype != "ExternalName":
            bad("spec.clusterIPs[0]", spec.get("clusterIP"), "may not change once set")
    lb = ((obj.get("status") or {}).get("loadBalancer"))
    if lb is not None and not isinstance(lb, dict):
        bad("status.loadBalancer", lb, "must be an object")
        return
    ingress = (lb or {}).get("ingress") or []
    if not isinstance(ingress, list):
        bad("status.loadBalancer.ingress", ingress, "must be a list")
        return
    for i, ing in enumerate(ingress):
        base = "status.loadBalancer.ingress[%d]" % i
        if not isinstance(ing, dict):
            bad(base, ing, "must be an object")
            continue
        ip = ing.get("ip")
        if ip is not None and ip != "" and not _valid_ip(ip):
            bad(base + ".ip", ip, "must be a valid IP address")
        mode = ing.get("ipMode")
        if mode is not None:
            if mode not in ("VIP", "Proxy"):
                bad(base + ".ipMode", mode, '"Proxy", "VIP"', "FieldValueNotSupported")
            elif not ip:
                bad(base + ".ipMode", mode, "must be specified when `ip` is set", "FieldValueRequired")
        for j, pst in enumerate(ing.get("ports") or []):
            pb = "%s.ports[%d]" % (base, j)
            if not isinstance(pst, dict):
                bad(pb, pst, "must be an object")
                continue
            if not _is_int(pst.get("port")) or not 1 <= pst["port"] <= 65535:
                bad(pb + ".port", pst.get("port"), "must be between 1 and 65535, inclusive")
            if pst.get("protocol") not in ("TCP", "UDP", "SCTP"):
                bad(pb + ".protocol", pst.get("protocol"), '"SCTP", "TCP", "UDP"', "FieldValueNotSupported")
            err = pst.get("error")
            if err is not None and (not isinstance(err, str) or len(err) > 316):
                bad(pb + ".error", err, "must be a CamelCase reason of at most 316 characters")


# --------------------------------------------------------------------------------------
# Tables (kubectl get asks for server-side printing)
# --------------------------------------------------------------------------------------

def human_duration(seconds):
    s = int(max(0, seconds))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = m // 60
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    d = h // 24
    if h < 24 * 8:
        return "%dd%dh" % (d, h % 24) if h % 24 else "%dd" % d
    if d < 365 * 2:
        return "%dd" % d
    return "%dy%dd" % (d // 365, d % 365) if d < 365 * 8 else "%dy" % (d // 365)


def _age(obj, key="creationTimestamp", base=None):
    ts = parse_rfc3339((base if base is not None else obj.get("metadata") or {}).get(key))
    return "<unknown>" if ts is None else human_duration(time.time() - ts)


def _col(name, typ="string", fmt="", prio=0, desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": prio}


def table_columns(res):
    if res.plural == "services":
        return [_col("Name", fmt="name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                _col("Port(s)"), _col("Age"), _col("Selector", prio=1)]
    if res.plural == "nodes":
        return [_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"),
                _col("Internal-IP", prio=1), _col("External-IP", prio=1), _col("OS-Image", prio=1),
                _col("Kernel-Version", prio=1), _col("Container-Runtime", prio=1)]
    if res.plural == "events":
        return [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
                _col("Subobject", prio=1), _col("Source", prio=1), _col("Message"),
                _col("First Seen", prio=1), _col("Count", typ="integer", prio=1), _col("Name", fmt="name", prio=1)]
    if res.plural == "namespaces":
        return [_col("Name", fmt="name"), _col("Status"), _col("Age")]
    return [_col("Name", fmt="name"), _col("Age")]


def table_cells(res, o):
    md = o.get("metadata") or {}
    spec = o.get("spec") or {}
    st = o.get("status") or {}
    if res.plural == "services":
        stype = spec.get("type", "")
        ext = list(spec.get("externalIPs") or [])
        if stype == "LoadBalancer":
            ing = [i.get("ip") or i.get("hostname") for i in (st.get("loadBalancer") or {}).get("ingress") or []]
            ext = [x for x in ing if x] + ext
            external = ",".join(ext) if ext else "<pending>"
        elif stype == "ExternalName":
            external = spec.get("externalName", "")
        else:
            external = ",".join(ext) if ext else "<none>"
        ports = []
        for p in spec.get("ports") or []:
            s = str(p.get("port"))
            if p.get("nodePort"):
                s += ":%s" % p["nodePort"]
            ports.append("%s/%s" % (s, p.get("protocol", "TCP")))
        sel = spec.get("selector") or {}
        return [md.get("name"), stype, spec.get("clusterIP") or "<none>", external,
                ",".join(ports) or "<none>", _age(o),
                ",".join("%s=%s" % kv for kv in sorted(sel.items())) or "<none>"]
    if res.plural == "nodes":
        ready = "Unknown"
        for c in st.get("conditions") or []:
            if c.get("type") == "Ready":
                ready = "Ready" if c.get("status") == "True" else "NotReady" if c.get("status") == "False" else "Unknown"
        if spec.get("unschedulable"):
            ready += ",SchedulingDisabled"
        roles = set()
        for k, v in (md.get("labels") or {}).items():
            if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
                roles.add(k[len("node-role.kubernetes.io/"):])
            elif k == "kubernetes.io/role" and v:
                roles.add(v)
        addrs = st.get("addresses") or []
        iip = ",".join(a.get("address", "") for a in addrs if a.get("type") == "InternalIP") or "<none>"
        eip = ",".join(a.get("address", "") for a in addrs if a.get("type") == "ExternalIP") or "<none>"
        info = st.get("nodeInfo") or {}
        return [md.get("name"), ready, ",".join(sorted(roles)) or "<none>", _age(o),
                info.get("kubeletVersion", ""), iip, eip, info.get("osImage", "<unknown>"),
                info.get("kernelVersion", "<unknown>"), info.get("containerRuntimeVersion", "<unknown>")]
    if res.plural == "events":
        inv = o.get("involvedObject") or {}
        last = o.get("lastTimestamp") or o.get("eventTime") or md.get("creationTimestamp")
        first = o.get("firstTimestamp") or o.get("eventTime") or md.get("creationTimestamp")
        return [_age({}, "t", {"t": last}), o.get("type", ""), o.get("reason", ""),
                "%s/%s" % (str(inv.get("kind", "")).lower(), inv.get("name", "")),
                inv.get("fieldPath", ""), (o.get("source") or {}).get("component", "") or o.get("reportingComponent", ""),
                o.get("message", ""), _age({}, "t", {"t": first}), int(o.get("count") or 1), md.get("name")]
    if res.plural == "namespaces":
        return [md.get("name"), st.get("phase", ""), _age(o)]
    return [md.get("name"), _age(o)]


def partial_metadata(o):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": deep(o.get("metadata") or {})}


def to_table(res, objs, include_object, list_meta=None, headers=True):
    rows = []
    for o in objs:
        row = {"cells": table_cells(res, o)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = partial_metadata(o)
        rows.append(row)
    t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {}}
    if headers:
        t["columnDefinitions"] = table_columns(res)
    else:
        t["columnDefinitions"] = None
    t["rows"] = rows
    return t


# --------------------------------------------------------------------------------------
# Store: objects, global RV, bounded history, watchers
# --------------------------------------------------------------------------------------

class Watcher:
    """One open watch. Filled by the store under its lock; drained by the handler thread."""
    _ids = iter(range(1, 1 << 62))

    def __init__(self, res, ns, lsel, fsel, query, user_agent, start_rv):
        self.id = next(Watcher._ids)
        self.res = res
        self.ns = ns
        self.lsel = lsel
        self.fsel = fsel
        self.query = query
        self.user_agent = user_agent
        self.start_rv = start_rv
        self.q = deque()
        self.cv = threading.Condition()
        self.closed = False
        self.abrupt = False
        self.events_sent = 0
        self.started = time.time()

    def matches(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata") or {}
        if self.res.namespaced and self.ns and md.get("namespace") != self.ns:
            return False
        return self.lsel.matches(obj) and self.fsel.matches(obj)

    def translate(self, ev):
        """Watch semantics under selectors: entering the selection is ADDED, leaving it DELETED."""
        if ev["resource"] != self.res.plural:
            return None
        now_m = self.matches(ev["obj"])
        was_m = self.matches(ev["prev"])
        if ev["type"] == "DELETED":
            return ("DELETED", ev["obj"]) if now_m else None
        if now_m and was_m:
            return ("MODIFIED", ev["obj"])
        if now_m:
            return ("ADDED", ev["obj"])
        if was_m:
            return ("DELETED", ev["obj"])
        return None

    def push(self, item):
        with self.cv:
            self.q.append(item)
            self.cv.notify()

    def close(self, abrupt=False):
        with self.cv:
            self.closed = True
            self.abrupt = abrupt
            self.cv.notify()


class Store:
    def __init__(self, history_size=1000, start_rv=100):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = start_rv
        self.objects = {p: {} for p in RESOURCES}
        self.history = deque()
        self.history_size = history_size
        self.horizon = start_rv
        self.watchers = set()
        self.allocator = Allocator()

    # -- helpers (call under lock) --
    def used_cluster_ips(self):
        return {(o.get("spec") or {}).get("clusterIP") for o in self.objects["services"].values()}

    def used_node_ports(self):
        used = set()
        for o in self.objects["services"].values():
            spec = o.get("spec") or {}
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and p.get("nodePort"):
                    used.add(p["nodePort"])
            if spec.get("healthCheckNodePort"):
                used.add(spec["healthCheckNodePort"])
        return used

    def _trim(self):
        while len(self.history) > self.history_size:
            self.horizon = self.history.popleft()["rv"]

    def commit(self, res, key, new_obj, etype):
        """Writes one change: new RV, history entry, watch fan-out. new_obj is the final
        state (for DELETED the last state). Returns the stored object."""
        with self.lock:
            self.rv += 1
            obj = deep(new_obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            prev = self.objects[res.plural].get(key)
            if etype == "DELETED":
                self.objects[res.plural].pop(key, None)
            else:
                self.objects[res.plural][key] = obj
            ev = {"rv": self.rv, "resource": res.plural, "type": etype, "obj": obj, "prev": prev}
            self.history.append(ev)
            self._trim()
            for w in list(self.watchers):
                item = w.translate(ev)
                if item:
                    w.push(item)
            self.changed.notify_all()
            return obj

    def compact(self):
        with self.lock:
            self.history.clear()
            self.horizon = self.rv

    def set_history_size(self, n):
        with self.lock:
            self.history_size = max(0, int(n))
            self._trim()

    def snapshot(self, res, at_rv):
        """The resource's objects as they were at at_rv, from the history."""
        with self.lock:
            if at_rv < self.horizon:
                raise expired("too old resource version: %d (%d)" % (at_rv, self.horizon))
            state = dict(self.objects[res.plural])
            for ev in reversed(self.history):
                if ev["rv"] <= at_rv:
                    break
                if ev["resource"] != res.plural:
                    continue
                key = object_key(res, ev["obj"])
                if ev["prev"] is None:
                    state.pop(key, None)
                else:
                    state[key] = ev["prev"]
            return state

    def ensure_namespace(self, ns):
        res = RESOURCES["namespaces"]
        with self.lock:
            if ns and ns not in self.objects["namespaces"]:
                o = {"metadata": {"name": ns}}
                self.commit(res, ns, stamp_new(res, o, self), "ADDED")

    def close_all_watches(self, abrupt=False):
        """Ends every open watch: cleanly (terminating chunk) or abruptly (TCP reset)."""
        with self.lock:
            ws = list(self.watchers)
        for w in ws:
            w.close(abrupt)
        return len(ws)

    def dump(self, with_history=False):
        with self.lock:
            out = {p: [deep(o) for _, o in sorted(self.objects[p].items())] for p in RESOURCES}
            out["resourceVersion"] = str(self.rv)
            out["horizon"] = str(self.horizon)
            if with_history:
                out["history"] = [deep(e) for e in self.history]
            return out


def object_key(res, obj):
    md = obj.get("metadata") or {}
    return res.key(md.get("namespace", ""), md.get("name", ""))


def stamp_new(res, obj, store):
    """Server-assigned fields of a new object (uid, creationTimestamp, generation) + defaults."""
    md = obj.setdefault("metadata", {})
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now_rfc3339()
    for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        md.pop(f, None)
    if res.plural == "services":
        md["generation"] = 1
    else:
        md.pop("generation", None)
    default_object(res, obj, store)
    return obj


# --------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------

FAULT_TYPES = ("http_error", "delay", "cut_watch", "watch_expired", "duplicate_events", "down")


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.next_id = 1
        self.fired = {}

    def add(self, spec):
        t = spec.get("type")
        if t not in FAULT_TYPES:
            raise ApiError(400, "unknown fault type %r; known: %s" % (t, ", ".join(FAULT_TYPES)))
        if t == "http_error" and not _is_int(spec.get("code")):
            raise ApiError(400, "http_error needs an integer 'code' (e.g. 410, 429, 500)")
        if t == "delay" and not isinstance(spec.get("seconds"), (int, float)):
            raise ApiError(400, "delay needs a number 'seconds'")
        if t == "cut_watch" and not _is_int(spec.get("after_events", 0)):
            raise ApiError(400, "cut_watch's 'after_events' must be an integer")
        count = spec.get("count")
        if count is not None and (not _is_int(count) or count < 1):
            raise ApiError(400, "'count' must be a positive integer or absent (until cleared)")
        for k in ("path",):
            if spec.get(k) is not None:
                try:
                    re.compile(spec[k])
                except re.error as e:
                    raise ApiError(400, "bad regex in %s: %s" % (k, e))
        with self.lock:
            f = dict(spec)
            f["id"] = self.next_id
            f["remaining"] = count
            f["fired"] = 0
            self.next_id += 1
            self.items.append(f)
            return dict(f)

    def list(self):
        with self.lock:
            return [dict(f) for f in self.items]

    def clear(self, fid=None):
        with self.lock:
            before = len(self.items)
            self.items = [f for f in self.items if fid is not None and f["id"] != fid]
            return before - len(self.items)

    def active(self, ftype):
        with self.lock:
            return any(f["type"] == ftype for f in self.items)

    def take(self, ftype, req):
        """The first fault of this type matching the request; consumes one use."""
        with self.lock:
            for f in self.items:
                if f["type"] != ftype or not _fault_matches(f, req):
                    continue
                f["fired"] += 1
                self.fired[ftype] = self.fired.get(ftype, 0) + 1
                if f["remaining"] is not None:
                    f["remaining"] -= 1
                    if f["remaining"] <= 0:
                        self.items.remove(f)
                return dict(f)
        return None


def _fault_matches(f, req):
    if f.get("verb") not in (None, "*", req.get("verb"), req.get("method")):
        return False
    if f.get("resource") not in (None, "*", req.get("resource"), req.get("resource_full")):
        return False
    if f.get("namespace") not in (None, req.get("namespace")):
        return False
    if f.get("name") not in (None, req.get("name")):
        return False
    if f.get("path") is not None and not re.search(f["path"], req.get("path", "")):
        return False
    return True


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------

class FakeApiServer:
    def __init__(self, args):
        self.args = args
        self.store = Store(history_size=args.history_size)
        self.faults = Faults()
        self.tokens = set([args.token]) if args.token else set()
        self.auth_enabled = bool(args.token)
        self.bookmark_interval = args.bookmark_interval
        self.default_watch_timeout = args.default_watch_timeout
        self.counters_lock = threading.Lock()
        self.counters = {}
        self.request_log = deque(maxlen=20000)
        self.request_seq = 0
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.open_watches = {}
        if args.state:
            with open(args.state) as f:
                self.load_state(json.load(f))
        else:
            self.load_state({})

    # -- state --
    def load_state(self, state):
        """Loads objects (hand-written or a dump). Objects keep their RV/uid if they have one."""
        st = self.store
        with st.lock:
            self.store.close_all_watches()
            for p in RESOURCES:
                st.objects[p] = {}
            st.history.clear()
            max_rv = max(st.rv, _to_int(state.get("resourceVersion"), 0))
            for p in ("namespaces", "nodes", "services", "events"):
                for o in state.get(p) or []:
                    max_rv = max(max_rv, _to_int((o.get("metadata") or {}).get("resourceVersion"), 0))
            st.rv = max_rv
            res_ns = RESOURCES["namespaces"]
            for ns in DEFAULT_NAMESPACES:
                st.objects["namespaces"][ns] = None
            for o in state.get("namespaces") or []:
                st.objects["namespaces"][o["metadata"]["name"]] = None
            for p in ("services", "events"):
                for o in state.get(p) or []:
                    st.objects["namespaces"][(o.get("metadata") or {}).get("namespace") or "default"] = None
            given = {o["metadata"]["name"]: o for o in state.get("namespaces") or []}
            for ns in sorted(st.objects["namespaces"]):
                o = deep(given.get(ns) or {"metadata": {"name": ns}})
                st.objects["namespaces"][ns] = self._loaded(res_ns, o)
            for p in ("nodes", "services", "events"):
                res = RESOURCES[p]
                for o in state.get(p) or []:
                    o = deep(o)
                    md = o.setdefault("metadata", {})
                    if res.namespaced:
                        md.setdefault("namespace", "default")
                    st.objects[p][object_key(res, o)] = self._loaded(res, o)
            hist = state.get("history")
            if hist:
                st.history.extend(hist)
                st.horizon = _to_int(state.get("horizon"), st.rv)
                st._trim()
            else:
                st.horizon = st.rv

    def _loaded(self, res, o):
        st = self.store
        md = o.setdefault("metadata", {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now_rfc3339())
        if res.plural == "services":
            md.setdefault("generation", 1)
        default_object(res, o, st)
        if not md.get("resourceVersion"):
            st.rv += 1
            md["resourceVersion"] = str(st.rv)
        return o

    # -- counters and log --
    def count(self, key, n=1):
        with self.counters_lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def log_request(self, entry):
        with self.counters_lock:
            self.request_seq += 1
            entry["seq"] = self.request_seq
            self.request_log.append(entry)
        if self.log_file:
            try:
                self.log_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            except ValueError:
                pass

    def counters_snapshot(self):
        with self.counters_lock:
            c = dict(self.counters)
        with self.store.lock:
            c["watches_open"] = len(self.store.watchers)
            c["resource_version"] = str(self.store.rv)
            c["horizon"] = str(self.store.horizon)
            c["history_len"] = len(self.store.history)
        c["faults_fired"] = dict(self.faults.fired)
        return c


def _to_int(v, default):
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


class _Parsed:
    pass


def parse_api_path(path, method, query):
    """Maps a /api/v1/... path to (resource, namespace, name, subresource, verb), or raises 404."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 3 or parts[0] != "api" or parts[1] != "v1":
        raise ApiError(404, "the server could not find the requested resource", reason="NotFound",
                       details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
    rest = parts[2:]
    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
    ns = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns = rest[1]
        rest = rest[2:]
    elif len(rest) in (2, 3) and rest[0] == "namespaces":
        rest = ["namespaces"] + rest[1:]
    if not rest or rest[0] not in RESOURCES or len(rest) > 3:
        raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
    res = RESOURCES[rest[0]]
    if ns and not res.namespaced:
        raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
    name = rest[1] if len(rest) >= 2 else ""
    sub = rest[2] if len(rest) == 3 else ""
    if sub and (sub != "status" or not res.has_status):
        raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
    is_watch = legacy_watch or query.get("watch", [""])[-1] in ("1", "true", "True")
    if method == "GET":
        verb = "watch" if is_watch else ("get" if name else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = method.lower()
    p = _Parsed()
    p.res, p.ns, p.name, p.sub, p.verb = res, ns, name, sub, verb
    return p


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Like Go's net/http (TCP_NODELAY on every connection): without it a response written in
    # two pieces waits for the client's delayed ACK, 40 ms per request.
    disable_nagle_algorithm = True
    server_version = "fake-kube-apiserver"
    sys_version = ""

    # Set by the server factory.
    fake = None  # type: FakeApiServer

    def log_message(self, fmt, *args):  # silence the default stderr access log
        if self.fake.args.verbose:
            sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

    # ---------- plumbing ----------
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method):
        self.t0 = time.time()
        self.method = method
        u = urlsplit(self.path)
        self.req_path = u.path
        self.raw_query = u.query
        self.query = parse_qs(u.query, keep_blank_values=True)
        self.body = b""
        self.logged = False
        self.resp_status = None
        self.req_info = {"method": method, "path": u.path}
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            if u.path.startswith("/_fake/") or u.path == "/_fake":
                self.fake.count("admin_requests")
                self._admin(method, u.path)
                return
            self.fake.count("requests_total")
            if self.fake.faults.active("down"):
                self.fake.faults.take("down", {"method": method, "path": u.path, "verb": "*"})
                self.fake.count("refused_down")
                self._log(0, note="down: connection reset")
                self._abort(reset=True)
                return
            self._api(method, u.path)
        except ApiError as e:
            self._send_json(e.code, e.body, headers=e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: answer like the real server would
            import traceback
            traceback.print_exc()
            try:
                self._send_json(500, status_body(500, "fake apiserver internal error: %r" % (e,)))
            except OSError:
                self.close_connection = True

    def _log(self, status, content_type=None, note=None, **extra):
        if self.logged:
            return
        self.logged = True
        body = None
        if self.method in ("POST", "PUT", "PATCH", "DELETE") and self.body:
            try:
                body = json.loads(self.body)
            except ValueError:
                body = self.body.decode("utf-8", "replace")
        entry = {"ts": round(self.t0, 3), "method": self.method, "path": self.req_path,
                 "query": self.raw_query, "status": status,
                 "content_type": self.headers.get("Content-Type", ""),
                 "accept": self.headers.get("Accept", ""),
                 "user_agent": self.headers.get("User-Agent", ""),
                 "verb": self.req_info.get("verb"), "resource": self.req_info.get("resource_full"),
                 "body": body, "response_content_type": content_type,
                 "duration_ms": round((time.time() - self.t0) * 1000, 1)}
        if note:
            entry["note"] = note
        entry.update(extra)
        if self.req_path.startswith("/_fake"):
            return
        self.fake.count("status_%d" % status)
        self.fake.log_request(entry)

    def _abort(self, reset=False):
        """Closes the connection without an HTTP response (RST when reset)."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _send_json(self, code, obj, headers=None, content_type=JSON_CT, log=True):
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self._send_bytes(code, data, content_type, headers, log)

    def _send_bytes(self, code, data, content_type, headers=None, log=True):
        if log:
            self._log(code, content_type)
        encoding = None
        if len(data) > GZIP_THRESHOLD and "gzip" in self.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data, 1)
            encoding = "gzip"
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)
        self.send_header("X-Content-Type-Options", "nosniff")
        if encoding:
            self.send_header("Content-Encoding", encoding)
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.method != "HEAD":
            self.wfile.write(data)

    def _json_body(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise ApiError(400, "the body of the request could not be decoded as JSON: %s" % e)

    # ---------- auth ----------
    def _authenticate(self):
        if not self.fake.auth_enabled:
            return
        h = self.headers.get("Authorization", "")
        tok = h[7:].strip() if h.lower().startswith("bearer ") else None
        if tok is None or tok not in self.fake.tokens:
            self.fake.count("unauthorized")
            raise ApiError(401, "Unauthorized", reason="Unauthorized")

    # ---------- content negotiation ----------
    def _wants_table(self):
        """True when the Accept header prefers a meta.k8s.io Table, like kubectl get."""
        accept = self.headers.get("Accept", "") or "*/*"
        for rng in accept.split(","):
            parts = [x.strip() for x in rng.split(";")]
            mt = parts[0].lower()
            params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            if mt in ("application/json", "*/*", "application/*"):
                if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" \
                        and params.get("v") in ("v1", "v1beta1"):
                    return True
                if "as" not in params:
                    return False
        if any(x.strip().lower().startswith(("application/json", "*/*", "application/*"))
               for x in accept.split(",")):
            return False
        raise ApiError(406, "only the following media types are accepted: application/json, "
                            "application/yaml, application/vnd.kubernetes.protobuf", reason="NotAcceptable")

    # ---------- the Kubernetes API ----------
    def _api(self, method, path):
        self._authenticate()
        if method == "GET" and path in ("/version", "/version/"):
            return self._send_json(200, SERVER_VERSION)
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return self._send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if method == "GET" and path in ("/api", "/api/"):
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                         "serverAddress": self._host()}]})
        if method == "GET" and path in ("/apis", "/apis/"):
            # Plain APIGroupList with Content-Type application/json: a client that asked for
            # the aggregated form (apidiscovery.k8s.io) falls back to legacy discovery.
            return self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if method == "GET" and path in ("/api/v1", "/api/v1/"):
            return self._send_json(200, self._resource_list())
        if path.startswith("/openapi/") or path.startswith("/apis/"):
            raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
        p = parse_api_path(path, method, self.query)
        full = p.res.plural + ("/" + p.sub if p.sub else "")
        self.req_info.update({"verb": p.verb, "resource": p.res.plural, "resource_full": full,
                              "namespace": p.ns, "name": p.name})
        if p.verb not in p.res.verbs and p.verb != "deletecollection":
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           reason="MethodNotAllowed")
        self._apply_request_faults()
        if p.verb == "list":
            return self._list(p)
        if p.verb == "watch":
            return self._watch(p)
        if p.verb == "get":
            return self._get(p)
        if p.verb == "create":
            if p.name:
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               reason="MethodNotAllowed")
            return self._create(p)
        if p.verb == "patch":
            return self._patch(p)
        if p.verb == "update":
            return self._update(p)
        if p.verb == "delete":
            return self._delete(p)
        raise ApiError(405, "the server does not allow this method on the requested resource",
                       reason="MethodNotAllowed")

    def _host(self):
        try:
            h, port = self.connection.getsockname()[:2]
            return "%s:%d" % (h, port)
        except OSError:
            return "127.0.0.1:0"

    def _resource_list(self):
        out = []
        for r in RESOURCES.values():
            out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                        "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names),
                        "storageVersionHash": base64.b64encode(r.kind.encode()).decode()[:11]})
            if r.has_status:
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": out}

    def _apply_request_faults(self):
        info = dict(self.req_info)
        d = self.fake.faults.take("delay", info)
        if d:
            time.sleep(float(d["seconds"]))
        f = self.fake.faults.take("http_error", info)
        if f:
            code = int(f["code"])
            headers = {}
            msg = f.get("message")
            if code == 429:
                headers["Retry-After"] = str(f.get("retry_after", 1))
                msg = msg or "Too many requests, please try again later."
                details = {"causes": [{"reason": "", "message": msg}],
                           "retryAfterSeconds": int(f.get("retry_after", 1))}
                raise ApiError(429, msg, reason="TooManyRequests", details=details, headers=headers)
            if code == 410:
                raise ApiError(410, msg or "The resourceVersion for the provided list is too old.",
                               reason="Expired")
            if f.get("retry_after") is not None:
                headers["Retry-After"] = str(f["retry_after"])
            raise ApiError(code, msg or "fake fault: injected HTTP %d" % code, headers=headers,
                           reason=f.get("reason"))

    # -- GET --
    def _lookup(self, p):
        with self.fake.store.lock:
            o = self.fake.store.objects[p.res.plural].get(p.res.key(p.ns, p.name))
            if o is None:
                raise not_found(p.res, p.name)
            return o

    def _get(self, p):
        o = self._lookup(p)
        if self._wants_table():
            inc = self.query.get("includeObject", ["Metadata"])[-1]
            return self._send_json(200, to_table(p.res, [o], inc, {"resourceVersion": o["metadata"]["resourceVersion"]}),
                                   content_type=TABLE_CT)
        return self._send_json(200, o)

    # -- LIST --
    def _selectors(self, p):
        try:
            lsel = LabelSelector(self.query.get("labelSelector", [""])[-1])
        except ValueError as e:
            raise ApiError(400, "unable to parse requirement: %s" % e)
        fsel = FieldSelector(self.query.get("fieldSelector", [""])[-1], p.res)
        return lsel, fsel

    def _list(self, p):
        res, st = p.res, self.fake.store
        lsel, fsel = self._selectors(p)
        q = self.query
        limit = _to_int(q.get("limit", ["0"])[-1], -1)
        if limit < 0:
            raise ApiError(400, "limit: Invalid value: must be a non-negative integer")
        cont = q.get("continue", [""])[-1]
        rv = q.get("resourceVersion", [""])[-1]
        match = q.get("resourceVersionMatch", [""])[-1]
        if q.get("sendInitialEvents", [""])[-1] in ("true", "1"):
            raise ApiError(400, "sendInitialEvents is forbidden for list")
        if match and match not in ("Exact", "NotOlderThan"):
            raise ApiError(400, 'resourceVersionMatch: Unsupported value: "%s": supported values: "Exact", "NotOlderThan"' % match)
        if match and not rv:
            raise ApiError(400, "resourceVersionMatch is forbidden unless resourceVersion is provided")
        if rv and not rv.isdigit():
            raise ApiError(400, 'resourceVersion: Invalid value: "%s": strconv.ParseUint: parsing "%s": invalid syntax' % (rv, rv))
        start_after = None
        with st.lock:
            if cont:
                if rv:
                    raise ApiError(400, "specifying resource version is not allowed when using continue")
                snap_rv, start_after = decode_continue(cont)
                if snap_rv < st.horizon:
                    fresh = encode_continue(st.rv, start_after)
                    raise ApiError(410, "The provided continue parameter is too old to display a consistent list "
                                        "result. You can start a new list without the continue parameter, or use the "
                                        "continue token in this response to retrieve the remainder of the results. "
                                        "Continuing with the provided token results in an inconsistent list - objects "
                                        "that were created, modified, or deleted between the time the first chunk was "
                                        "returned and now may show up in the list.",
                                   reason="Expired", metadata={"continue": fresh})
                state = st.snapshot(res, snap_rv)
            elif rv and match == "Exact":
                snap_rv = int(rv)
                if snap_rv > st.rv:
                    raise ApiError(504, "Timeout: Too large resource version: %d, current: %d" % (snap_rv, st.rv),
                                   details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1})
                state = st.snapshot(res, snap_rv)
            else:
                if rv and int(rv) > st.rv:
                    raise ApiError(504, "Timeout: Too large resource version: %s, current: %d" % (rv, st.rv),
                                   details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1})
                snap_rv = st.rv
                state = st.objects[res.plural]
            prefix = (p.ns + "/") if (res.namespaced and p.ns) else ""
            keys = sorted(k for k in state if k.startswith(prefix) and (start_after is None or k > start_after))
            items, last_key, remaining = [], None, 0
            for i, k in enumerate(keys):
                o = state[k]
                if not (lsel.matches(o) and fsel.matches(o)):
                    continue
                if limit and len(items) >= limit:
                    remaining = sum(1 for kk in keys[i:] if lsel.matches(state[kk]) and fsel.matches(state[kk]))
                    break
                items.append(o)
                last_key = k
        meta = {"resourceVersion": str(snap_rv)}
        if remaining:
            meta["continue"] = encode_continue(snap_rv, last_key)
            if not lsel.reqs and not fsel.reqs:
                meta["remainingItemCount"] = remaining
        self.fake.count("list_items_sent", len(items))
        if self._wants_table():
            inc = self.query.get("includeObject", ["Metadata"])[-1]
            return self._send_json(200, to_table(res, items, inc, meta), content_type=TABLE_CT)
        out_items = []
        for o in items:
            o2 = dict(o)
            o2.pop("kind", None)
            o2.pop("apiVersion", None)
            out_items.append(o2)
        return self._send_json(200, {"kind": res.kind + "List", "apiVersion": "v1", "metadata": meta,
                                     "items": out_items})

    # -- WATCH --
    def _watch(self, p):
        res, st, fake = p.res, self.fake.store, self.fake
        q = self.query
        lsel, fsel = self._selectors(p)
        if q.get("sendInitialEvents", [""])[-1] in ("true", "1", "True"):
            raise ApiError(400, "sendInitialEvents is not supported by this server (the WatchList feature is off)",
                           reason="BadRequest")
        rv = q.get("resourceVersion", [""])[-1]
        if rv and not rv.isdigit():
            raise ApiError(400, 'resourceVersion: Invalid value: "%s": strconv.ParseUint: parsing "%s": invalid syntax' % (rv, rv))
        timeout = q.get("timeoutSeconds", [""])[-1]
        if timeout:
            if not timeout.isdigit():
                raise ApiError(400, "timeoutSeconds: Invalid value: %s: must be a non-negative integer" % timeout)
            timeout = float(timeout)
        else:
            timeout = fake.default_watch_timeout * (1 + random.random())
        bookmarks = q.get("allowWatchBookmarks", [""])[-1] in ("true", "1", "True")
        table = self._wants_table()
        include = q.get("includeObject", ["Metadata"])[-1]
        if p.name:  # watch on a single object path (legacy /watch/ns/x/svc/NAME)
            fsel.reqs.append(("metadata.name", True, p.name))
        w = Watcher(res, p.ns, lsel, fsel, self.raw_query, self.headers.get("User-Agent", ""), rv)
        expired_msg = None
        with st.lock:
            if rv and rv != "0" and int(rv) > st.rv:
                deadline = time.time() + TOO_LARGE_RV_WAIT
                while int(rv) > st.rv and time.time() < deadline:
                    st.changed.wait(deadline - time.time())
                if int(rv) > st.rv:
                    raise ApiError(504, "Timeout: Too large resource version: %s, current: %d" % (rv, st.rv),
                                   details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                        "message": "Too large resource version"}],
                                            "retryAfterSeconds": 1})
            if rv in ("", "0"):
                for k in sorted(st.objects[res.plural]):
                    o = st.objects[res.plural][k]
                    if w.matches(o):
                        w.q.append(("ADDED", o))
            elif int(rv) < st.horizon:
                expired_msg = "too old resource version: %s (%d)" % (rv, st.horizon)
            else:
                for ev in st.history:
                    if ev["rv"] > int(rv):
                        item = w.translate(ev)
                        if item:
                            w.q.append(item)
            if expired_msg is None:
                st.watchers.add(w)
        forced_expired = fake.faults.take("watch_expired", self.req_info)
        if forced_expired and expired_msg is None:
            with st.lock:
                st.watchers.discard(w)
                expired_msg = "too old resource version: %s (%d)" % (rv or "0", st.rv)
        cut = fake.faults.take("cut_watch", self.req_info)
        dup = fake.faults.take("duplicate_events", self.req_info)

        ct = TABLE_CT if table else JSON_CT
        self._log(200, ct, watch=True)
        fake.count("watches_started")
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ct)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = [True]

        def encode(etype, obj):
            if etype in ("ERROR", "BOOKMARK"):
                o = obj
            elif table:
                o = to_table(res, [obj], include, {"resourceVersion": obj["metadata"]["resourceVersion"]},
                             headers=first[0])
                first[0] = False
            else:
                o = obj
            return json.dumps({"type": etype, "object": o}, separators=(",", ":")).encode() + b"\n"

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def finish():
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True

        if expired_msg is not None:
            try:
                chunk(encode("ERROR", status_body(410, expired_msg, reason="Expired")))
                fake.count("watch_errors_410")
                finish()
            except OSError:
                self.close_connection = True
            return

        fake.open_watches[w.id] = w
        deadline = time.time() + timeout
        interval = fake.bookmark_interval
        next_bm = time.time() + interval
        cut_after = int(cut.get("after_events", 0)) if cut else None
        try:
            while True:
                if cut_after is not None and w.events_sent >= cut_after:
                    with w.cv:
                        nxt = w.q[0] if w.q else None
                    line = encode(*nxt) if nxt else encode("BOOKMARK", self._bookmark_obj(res, st.rv))
                    chunk(line[:max(1, len(line) // 2)])
                    fake.count("watches_cut")
                    self._abort()
                    return
                item = None
                with w.cv:
                    if not w.q and not w.closed:
                        wait = min(deadline, next_bm if bookmarks else deadline) - time.time()
                        if wait > 0:
                            w.cv.wait(min(wait, 0.5))
                    if w.q:
                        item = w.q.popleft()
                    closed = w.closed
                if item is None and closed:
                    if w.abrupt:
                        self._abort(reset=True)
                    else:
                        finish()
                    return
                if item is not None:
                    line = encode(*item)
                    chunk(line)
                    w.events_sent += 1
                    fake.count("watch_events_sent")
                    if dup:
                        chunk(line)
                        fake.count("watch_events_duplicated")
                    continue
                now = time.time()
                if now >= deadline:
                    if bookmarks:
                        self._send_bookmark(w, res, chunk)
                    finish()
                    return
                if bookmarks and now >= next_bm:
                    self._send_bookmark(w, res, chunk)
                    next_bm = now + fake.bookmark_interval
                if self._client_gone():
                    self.close_connection = True
                    return
        except OSError:
            self.close_connection = True
        finally:
            with st.lock:
                st.watchers.discard(w)
            fake.open_watches.pop(w.id, None)

    def _client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)  # nothing legitimate arrives during a watch: EOF or close_notify

    @staticmethod
    def _bookmark_obj(res, rv):
        return {"kind": res.kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}}

    def _send_bookmark(self, w, res, chunk):
        st = self.fake.store
        with st.lock:
            with w.cv:
                if w.q:
                    return  # only when everything up to the current RV was delivered
            rv = st.rv
        chunk(json.dumps({"type": "BOOKMARK", "object": self._bookmark_obj(res, rv)},
                         separators=(",", ":")).encode() + b"\n")
        self.fake.count("bookmarks_sent")

    # -- writes --
    def _dry_run(self):
        d = self.query.get("dryRun", [])
        if any(x not in ("All",) for x in d):
            raise ApiError(400, 'dryRun: Unsupported value: "%s": supported values: "All"' % d[0])
        return bool(d)

    def _check_namespace(self, ns):
        if ns and ns not in self.fake.store.objects["namespaces"]:
            raise ApiError(404, 'namespaces "%s" not found' % ns, details={"name": ns, "kind": "namespaces"})

    def _create(self, p):
        res, st = p.res, self.fake.store
        if not res.api_writable:
            raise ApiError(405, "the server does not allow this method on the requested resource", reason="MethodNotAllowed")
        obj = self._json_body()
        if not isinstance(obj, dict):
            raise ApiError(400, "the body of the request was not a JSON object")
        if obj.get("kind") not in (None, res.kind) or obj.get("apiVersion") not in (None, "v1"):
            raise ApiError(400, "the API version in the data (%s) does not match the expected API version (v1)"
                           % obj.get("apiVersion") if obj.get("apiVersion") not in (None, "v1")
                           else "Object kind %s does not match %s" % (obj.get("kind"), res.kind))
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise ApiError(400, "metadata must be an object")
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != p.ns:
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = p.ns
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        dry = self._dry_run()
        with st.lock:
            if res.namespaced:
                self._check_namespace(p.ns)
            stamp_new(res, obj, st)
            validate(res, obj)
            key = object_key(res, obj)
            if key in st.objects[res.plural]:
                raise ApiError(409, '%s "%s" already exists' % (res.plural, md["name"]), reason="AlreadyExists",
                               details={"name": md["name"], "kind": res.plural})
            if dry:
                out = obj
            else:
                out = st.commit(res, key, obj, "ADDED")
        return self._send_json(201, out)

    def _finish_write(self, p, old, new, dry):
        """Shared tail of PATCH and PUT: server-managed fields, validation, no-op, commit."""
        res, st = p.res, self.fake.store
        omd, nmd = old["metadata"], new.setdefault("metadata", {})
        if not isinstance(nmd, dict):
            raise invalid(res, p.name, [("metadata", "FieldValueInvalid", "Invalid value: must be an object")])
        if nmd.get("name", p.name) != p.name:
            raise ApiError(400, "the name of the object (%s) does not match the name on the URL (%s)" % (nmd.get("name"), p.name))
        if res.namespaced and nmd.get("namespace", p.ns) != p.ns:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        if nmd.get("uid") and nmd["uid"] != omd["uid"]:
            raise ApiError(409, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                           % (nmd["uid"], omd["uid"]), reason="Conflict",
                           details={"name": p.name, "kind": res.plural})
        if nmd.get("resourceVersion") and nmd["resourceVersion"] != omd["resourceVersion"]:
            raise conflict(res, p.name)
        if p.sub == "status":
            final = deep(old)
            if "status" in new:
                final["status"] = new["status"]
            else:
                final.pop("status", None)
        else:
            final = new
            if res.has_status:
                if "status" in old:
                    final["status"] = deep(old["status"])
                else:
                    final.pop("status", None)
        fmd = final["metadata"]
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if f in omd:
                fmd[f] = omd[f]
            else:
                fmd.pop(f, None)
        fmd["name"] = p.name
        if res.namespaced:
            fmd["namespace"] = p.ns
        fmd["resourceVersion"] = omd["resourceVersion"]
        for f in ("labels", "annotations", "finalizers", "ownerReferences"):
            if fmd.get(f) in ({}, []):
                fmd.pop(f, None)  # omitempty, as the Go types serialize them
        final["apiVersion"], final["kind"] = "v1", res.kind
        try:
            default_object(res, final, st)
        except (AttributeError, TypeError):
            pass  # a malformed object: validation reports it below
        validate(res, final, old)
        if final == old:
            return old, 200
        if res.plural == "services" and final.get("spec") != old.get("spec"):
            fmd["generation"] = int(omd.get("generation", 1)) + 1
        if dry:
            return final, 200
        key = object_key(res, old)
        if fmd.get("deletionTimestamp") and not fmd.get("finalizers"):
            return st.commit(res, key, final, "DELETED"), 200
        return st.commit(res, key, final, "MODIFIED"), 200

    def _patch(self, p):
        res, st = p.res, self.fake.store
        if not res.api_writable:
            raise ApiError(405, "the server does not allow this method on the requested resource", reason="MethodNotAllowed")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                                + ", ".join(PATCH_TYPES), reason="UnsupportedMediaType")
        patch = self._json_body()
        dry = self._dry_run()
        with st.lock:
            old = self._lookup(p)
            try:
                if ctype == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise PatchError("a merge patch must be a JSON object")
                    new = merge_patch(old, patch)
                elif ctype == "application/strategic-merge-patch+json":
                    new = strategic_merge_patch(old, patch)
                else:
                    new = json_patch(old, patch)
            except PatchError as e:
                if ctype == "application/json-patch+json":
                    raise invalid(res, p.name, [("patch", "FieldValueInvalid", "Invalid value: %s" % e)]) \
                        if "test" not in str(e) else ApiError(422, str(e), reason="Invalid")
                raise ApiError(400, str(e))
            if not isinstance(new, dict):
                raise invalid(res, p.name, [("", "FieldValueInvalid", "Invalid value: the patch made the object not a JSON object")])
            out, code = self._finish_write(p, old, new, dry)
        return self._send_json(code, out)

    def _update(self, p):
        res, st = p.res, self.fake.store
        if not res.api_writable:
            raise ApiError(405, "the server does not allow this method on the requested resource", reason="MethodNotAllowed")
        new = self._json_body()
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise ApiError(400, "the body of the request was not a JSON object with metadata")
        dry = self._dry_run()
        with st.lock:
            old = self._lookup(p)
            out, code = self._finish_write(p, old, new, dry)
        return self._send_json(code, out)

    def _delete(self, p):
        res, st = p.res, self.fake.store
        if not res.api_writable:
            raise ApiError(405, "the server does not allow this method on the requested resource", reason="MethodNotAllowed")
        opts = self._json_body() if self.body else {}
        if opts is not None and not isinstance(opts, dict):
            raise ApiError(400, "the body of the request was not DeleteOptions")
        pre = (opts or {}).get("preconditions") or {}
        dry = self._dry_run()
        with st.lock:
            old = self._lookup(p)
            omd = old["metadata"]
            if pre.get("uid") and pre["uid"] != omd["uid"]:
                raise ApiError(409, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (pre["uid"], omd["uid"]), reason="Conflict",
                               details={"name": p.name, "kind": res.plural})
            if pre.get("resourceVersion") and pre["resourceVersion"] != omd["resourceVersion"]:
                raise ApiError(409, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in "
                                    "object meta: %s" % (pre["resourceVersion"], omd["resourceVersion"]),
                               reason="Conflict", details={"name": p.name, "kind": res.plural})
            key = object_key(res, old)
            if omd.get("finalizers"):
                if omd.get("deletionTimestamp") or dry:
                    return self._send_json(202, old)
                new = deep(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._send_json(202, st.commit(res, key, new, "MODIFIED"))
            out = old if dry else st.commit(res, key, old, "DELETED")
        if res.returns_deleted_object:
            return self._send_json(200, out)
        return self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                     "details": {"name": p.name, "kind": res.plural, "uid": out["metadata"]["uid"]}})

    # ---------- admin API ----------
    def _admin(self, method, path):
        fake, st = self.fake, self.fake.store
        parts = [x for x in path.split("/") if x][1:]
        try:
            body = json.loads(self.body) if self.body else {}
        except ValueError as e:
            return self._send_json(400, {"error": "body is not JSON: %s" % e}, log=False)

        def ok(obj, code=200):
            return self._send_json(code, obj, log=False)

        try:
            head = parts[0] if parts else ""
            if head == "healthz" and method == "GET":
                return ok({"ok": True})
            if head == "state":
                if method == "GET":
                    return ok(st.dump(with_history=self.query.get("history", ["0"])[-1] in ("1", "true")))
                if method in ("POST", "PUT"):
                    fake.load_state(body)
                    return ok({"resourceVersion": str(st.rv)})
            if head == "objects" and len(parts) >= 2:
                return self._admin_objects(method, parts[1:], body, ok)
            if head == "huge" and method == "POST":
                res = _admin_resource(body.get("resource", "services"))
                size = int(body.get("bytes", 1 << 20))
                key = res.key(body.get("namespace", ""), body["name"])
                with st.lock:
                    old = st.objects[res.plural].get(key)
                    if old is None:
                        raise not_found(res, body["name"])
                    new = deep(old)
                    new["metadata"].setdefault("annotations", {})[body.get("key", "fake.nodegate.io/huge")] = "x" * size
                    return ok(_summary(st.commit(res, key, new, "MODIFIED")))
            if head == "compact" and method == "POST":
                st.compact()
                return ok({"horizon": str(st.horizon)})
            if head == "token" and method == "POST":
                toks = body.get("tokens")
                if toks is None:
                    toks = [body["token"]] if body.get("token") else []
                fake.tokens = set(toks)
                fake.auth_enabled = bool(toks)
                fake.store.close_all_watches() if body.get("close_watches") else None
                return ok({"tokens": len(fake.tokens)})
            if head == "faults":
                if method == "GET":
                    return ok({"faults": fake.faults.list()})
                if method == "POST":
                    f = fake.faults.add(body)
                    if f["type"] == "down":
                        st.close_all_watches(abrupt=True)  # like a crashed server
                    return ok(f, 201)
                if method == "DELETE":
                    n = fake.faults.clear(int(parts[1]) if len(parts) > 1 else None)
                    return ok({"cleared": n})
            if head == "close-watches" and method == "POST":
                return ok({"closed": st.close_all_watches(abrupt=bool(body.get("abrupt")))})
            if head == "watches" and method == "GET":
                ws = [{"id": w.id, "resource": w.res.plural, "namespace": w.ns, "query": w.query,
                       "user_agent": w.user_agent, "start_rv": w.start_rv, "events_sent": w.events_sent,
                       "age_seconds": round(time.time() - w.started, 3)}
                      for w in list(fake.open_watches.values())]
                return ok({"watches": ws})
            if head == "counters":
                if method == "GET":
                    return ok(fake.counters_snapshot())
                if method == "DELETE" or (method == "POST" and parts[1:] == ["reset"]):
                    with fake.counters_lock:
                        fake.counters.clear()
                    fake.faults.fired.clear()
                    return ok({"reset": True})
            if head == "requests":
                if method == "GET":
                    since = _to_int(self.query.get("since", ["0"])[-1], 0)
                    with fake.counters_lock:
                        reqs = [r for r in fake.request_log if r["seq"] > since]
                    return ok({"requests": reqs, "last": fake.request_seq})
                if method == "DELETE":
                    with fake.counters_lock:
                        fake.request_log.clear()
                    return ok({"cleared": True})
            if head == "config":
                if method == "POST":
                    if "bookmark_interval" in body:
                        fake.bookmark_interval = float(body["bookmark_interval"])
                    if "history_size" in body:
                        st.set_history_size(body["history_size"])
                    if "default_watch_timeout" in body:
                        fake.default_watch_timeout = float(body["default_watch_timeout"])
                return ok({"bookmark_interval": fake.bookmark_interval, "history_size": st.history_size,
                           "default_watch_timeout": fake.default_watch_timeout})
            return self._send_json(404, {"error": "no admin endpoint %s %s (see README.md)" % (method, path)}, log=False)
        except ApiError as e:
            return self._send_json(e.code, e.body, log=False)
        except (KeyError, TypeError, ValueError) as e:
            return self._send_json(400, {"error": "bad admin request: %r" % (e,)}, log=False)

    def _admin_objects(self, method, parts, body, ok):
        """/_fake/objects/{resource}[/{ns}]/{name}: state changes as another client would make them."""
        st = self.fake.store
        res = _admin_resource(parts[0])
        rest = parts[1:]
        if res.namespaced and len(rest) == 2:
            ns, name = rest
        elif not res.namespaced and len(rest) == 1:
            ns, name = "", rest[0]
        elif not rest:
            ns = name = None
        else:
            raise ApiError(400, "admin object path is /_fake/objects/%s/%s" % (
                res.plural, "{namespace}/{name}" if res.namespaced else "{name}"))
        raw = self.query.get("raw", ["0"])[-1] in ("1", "true")
        with st.lock:
            if method == "GET" and name is None:
                return ok({"items": [o for _, o in sorted(st.objects[res.plural].items())]})
            if method == "POST" and name is None:
                obj = body
                md = obj.setdefault("metadata", {})
                if res.namespaced:
                    md.setdefault("namespace", "default")
                    st.ensure_namespace(md["namespace"])
                key = object_key(res, obj)
                if key in st.objects[res.plural]:
                    raise ApiError(409, '%s "%s" already exists' % (res.plural, md.get("name")), reason="AlreadyExists")
                keep = {f: md[f] for f in ("deletionTimestamp",) if f in md}
                stamp_new(res, obj, st)
                md.update(keep)
                if not raw:
                    validate(res, obj)
                return ok(st.commit(res, key, obj, "ADDED"), 201)
            if name is None:
                raise ApiError(405, "use POST on the collection or a verb on /{name}")
            key = res.key(ns, name)
            old = st.objects[res.plural].get(key)
            if method == "GET":
                if old is None:
                    raise not_found(res, name)
                return ok(old)
            if method in ("PUT", "PATCH"):
                if old is None and method == "PATCH":
                    raise not_found(res, name)
                if old is None:
                    if res.namespaced:
                        st.ensure_namespace(ns)
                    new = body
                    new.setdefault("metadata", {}).update({"name": name, **({"namespace": ns} if res.namespaced else {})})
                    stamp_new(res, new, st)
                    if not raw:
                        validate(res, new)
                    return ok(st.commit(res, key, new, "ADDED"), 201)
                new = merge_patch(old, body) if method == "PATCH" else body
                md = new.setdefault("metadata", {})
                md["name"] = name
                if res.namespaced:
                    md["namespace"] = ns
                for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if f not in md and f in old["metadata"]:
                        md[f] = old["metadata"][f]
                md["resourceVersion"] = old["metadata"]["resourceVersion"]
                default_object(res, new, st)
                if not raw:
                    validate(res, new)
                if new == old:
                    return ok(old)
                if res.plural == "services" and new.get("spec") != old.get("spec") and "generation" not in (body.get("metadata") or {}):
                    md["generation"] = int(old["metadata"].get("generation", 1)) + 1
                if md.get("deletionTimestamp") and not md.get("finalizers"):
                    return ok(st.commit(res, key, new, "DELETED"))
                return ok(st.commit(res, key, new, "MODIFIED"))
            if method == "DELETE":
                if old is None:
                    raise not_found(res, name)
                force = self.query.get("force", ["0"])[-1] in ("1", "true")
                if old["metadata"].get("finalizers") and not force:
                    if old["metadata"].get("deletionTimestamp"):
                        return ok(old, 202)
                    new = deep(old)
                    new["metadata"]["deletionTimestamp"] = now_rfc3339()
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    return ok(st.commit(res, key, new, "MODIFIED"), 202)
                return ok(st.commit(res, key, old, "DELETED"))
        raise ApiError(405, "method %s not supported here" % method)


def _admin_resource(name):
    res = RESOURCES.get(name)
    if res is None:
        raise ApiError(404, "unknown resource %r; known: %s" % (name, ", ".join(RESOURCES)))
    return res


def _summary(o):
    md = o["metadata"]
    return {"name": md.get("name"), "namespace": md.get("namespace"), "resourceVersion": md["resourceVersion"],
            "uid": md["uid"]}


def encode_continue(rv, last_key):
    # Same shape as the real server's token: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"key\u0000"}.
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        pad = "=" * (-len(token) % 4)
        d = json.loads(base64.urlsafe_b64decode(token + pad))
        if d.get("v") != "meta.k8s.io/v1" or not isinstance(d.get("rv"), int) or not isinstance(d.get("start"), str):
            raise ValueError("unexpected fields")
        start = d["start"]
        if start.endswith("\x00"):
            start = start[:-1]
        return d["rv"], start
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise ApiError(400, "continue key is not valid: %s" % e)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, ssl_ctx):
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake here, in the per-connection thread, so a slow client can't stall accept().
        if self.ssl_ctx is not None:
            try:
                request.settimeout(30)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                try:
                    request.close()
                except OSError:
                    pass
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


def build_arg_parser():
    ap = argparse.ArgumentParser(description="Fake Kubernetes API server for NodeGate tests (see README.md).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (see --port-file)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--cert", help="TLS server certificate (PEM)")
    ap.add_argument("--key", help="TLS server private key (PEM)")
    ap.add_argument("--insecure-http", action="store_true", help="serve plain HTTP (debugging only)")
    ap.add_argument("--token", help="bearer token clients must send (omit: no authentication)")
    ap.add_argument("--state", help="initial objects: JSON {services:[...], nodes:[...]} or a /_fake/state dump")
    ap.add_argument("--log", help="append one JSON line per API request here")
    ap.add_argument("--history-size", type=int, default=1000,
                    help="events kept for watch replay and continue tokens (the compaction horizon)")
    ap.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds between BOOKMARKs")
    ap.add_argument("--default-watch-timeout", type=float, default=1800.0,
                    help="watch length without timeoutSeconds is this times [1,2), like --min-request-timeout")
    ap.add_argument("--service-node-port-range", default="30000-32767",
                    help="NodePort allocation range, like kube-apiserver's flag")
    ap.add_argument("--verbose", action="store_true")
    return ap


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    if not args.insecure_http and not (args.cert and args.key):
        sys.exit("fake_apiserver: --cert and --key are required (or --insecure-http for debugging)")
    m = re.fullmatch(r"(\d+)-(\d+)", args.service_node_port_range)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= 65535:
        sys.exit("fake_apiserver: --service-node-port-range must look like 30000-32767")
    Allocator.node_port_range = (int(m.group(1)), int(m.group(2)))
    ctx = None
    if not args.insecure_http:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])  # no h2: clients fall back to HTTP/1.1
    try:
        fake = FakeApiServer(args)
    except (OSError, ValueError, KeyError) as e:
        sys.exit("fake_apiserver: cannot load --state %s: %s" % (args.state, e))
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    try:
        httpd = Server((args.host, args.port), handler, ctx)
    except OSError as e:
        sys.exit("fake_apiserver: cannot listen on %s:%d: %s" % (args.host, args.port, e))
    port = httpd.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stderr.write("fake_apiserver: listening on %s://%s:%d (auth %s)\n"
                     % ("http" if args.insecure_http else "https", args.host, port,
                        "on" if fake.auth_enabled else "off"))

    def stop(signum, frame):
        fake.store.close_all_watches()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
