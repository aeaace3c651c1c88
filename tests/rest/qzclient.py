"""A thin HTTP client for the QuartzDB REST API (requests), plus the
assertions every test uses on error bodies."""
import json as _json
import math
import urllib.parse

import requests

TIMEOUT = 60


class Api:
    def __init__(self, url, key, header="bearer"):
        self.url = url.rstrip("/")
        self.key = key
        self.header = header
        self.s = requests.Session()

    def headers(self, key=..., header=None, extra=None):
        key = self.key if key is ... else key
        header = header or self.header
        h = {}
        if key is not None:
            if header == "bearer":
                h["Authorization"] = "Bearer " + key
            else:
                h["X-API-Key"] = key
        if extra:
            h.update(extra)
        return h

    def req(self, method, path, body=None, *, data=None, key=..., header=None, headers=None,
            session=None):
        """body: a Python value sent as JSON; data: raw bytes/str sent as is."""
        h = self.headers(key, header, headers)
        if body is not None:
            data = _json.dumps(body, allow_nan=False)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
            if isinstance(data, str):
                data = data.encode("utf-8")
        return (session or self.s).request(method, self.url + path, data=data, headers=h,
                                           timeout=TIMEOUT)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    def index(self, name):
        return Index(self, name)

    def default(self):
        return Index(self, "default")


def quote_id(i):
    """The path form of an id: its string form, percent-encoded (every byte
    outside unreserved characters, '/' included). A segment that is all
    dots has them encoded too ("%2E"): clients remove "." and ".." segments
    from a path (RFC 3986 section 5.2.4) before sending it."""
    q = urllib.parse.quote(str(i), safe="")
    return q.replace(".", "%2E") if q.strip(".") == "" else q


class Index:
    """The vector routes of one index, for the contract's two path shapes."""

    def __init__(self, api, name):
        self.api = api
        self.name = name
        self.base = "/api/vector" if name == "default" else "/api/indexes/%s/vector" % name

    def path(self, op):
        return self.base + "/" + op

    def insert(self, id, vector, metadata=..., **kw):
        b = {"id": id, "vector": vector}
        if metadata is not ...:
            b["metadata"] = metadata
        return self.api.post(self.path("insert"), b, **kw)

    def upsert(self, id, vector, metadata=..., **kw):
        b = {"id": id, "vector": vector}
        if metadata is not ...:
            b["metadata"] = metadata
        return self.api.post(self.path("upsert"), b, **kw)

    def batch(self, rows, upsert=None, **kw):
        b = {"vectors": rows}
        if upsert is not None:
            b["upsert"] = upsert
        return self.api.post(self.path("batch-insert"), b, **kw)

    def search(self, query, k=None, **fields):
        b = {"query": query}
        if k is not None:
            b["k"] = k
        kw = {}
        for name in ("key", "header", "session"):
            if name in fields:
                kw[name] = fields.pop(name)
        b.update(fields)
        return self.api.post(self.path("search"), b, **kw)

    def get(self, id, **kw):
        return self.api.get(self.path("get/") + quote_id(id), **kw)

    def get_many(self, ids, **kw):
        return self.api.post(self.path("get"), {"ids": ids}, **kw)

    def delete(self, id, **kw):
        return self.api.delete(self.path("delete/") + quote_id(id), **kw)

    def delete_many(self, ids, **kw):
        return self.api.post(self.path("delete"), {"ids": ids}, **kw)

    def stats(self, **kw):
        return self.api.get(self.path("stats"), **kw)

    def describe(self):
        r = self.api.get("/api/indexes/" + self.name)
        assert r.status_code == 200, r.text
        return r.json()["index"]

    def snapshot(self, ids):
        """What a failed request must leave alone: the description and the
        stored form of the given ids."""
        d = self.describe()
        r = self.get_many(list(ids))
        assert r.status_code == 200, r.text
        body = r.json()
        got = sorted((_json.dumps(v, sort_keys=True) for v in body["vectors"]))
        return d, got, sorted(map(str, body["missing"]))


def error(r, status, code):
    """Assert r is the contract's error {"error": {"code", "message"}} with
    this status and code; return the message."""
    assert r.status_code == status, "want %d %s, got %d: %s" % (status, code, r.status_code, r.text[:500])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert body["error"].get("code") == code, body
    msg = body["error"].get("message")
    assert isinstance(msg, str) and msg, body
    return msg


def ok(r, status=200):
    assert r.status_code == status, "want %d, got %d: %s" % (status, r.status_code, r.text[:500])
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict), body
    return body


# ---- exact reference arithmetic (pure Python, float64) ----

def dot(a, b):
    return math.fsum(x * y for x, y in zip(a, b))


def l2sq(a, b):
    return math.fsum((x - y) * (x - y) for x, y in zip(a, b))


def cosine_dist(a, b):
    return 1.0 - dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))


def hamming(a, b):
    return sum((x > 0) != (y > 0) for x, y in zip(a, b))


def distance(metric, a, b):
    return {"l2": l2sq, "ip": lambda x, y: 1.0 - dot(x, y), "cosine": cosine_dist,
            "hamming": hamming}[metric](a, b)


def score(metric, d, dimension):
    if metric in ("cosine", "ip"):
        return 1.0 - d
    if metric == "l2":
        return 1.0 / (1.0 + math.sqrt(d))
    return 1.0 - d / dimension


def brute_topk(metric, vectors, q, k):
    """Exact top-k ids, ties broken by id's string form."""
    d = sorted(((distance(metric, v, q), str(i), i) for i, v in vectors.items()))
    return [i for _, _, i in d[:k]], d[:k]
