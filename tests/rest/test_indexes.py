"""Index management: create, list, describe, drop."""
import uuid

import pytest

from qzclient import error, ok

DESC_KEYS = {"name", "dimension", "metric", "M", "ef_construction", "ef_search", "count", "deleted"}


def check_desc(d):
    assert DESC_KEYS <= set(d), d
    for k in ("dimension", "M", "ef_construction", "ef_search", "count", "deleted"):
        assert isinstance(d[k], int) and not isinstance(d[k], bool), (k, d)


def test_default_index_exists(api):
    d = ok(api.get("/api/indexes/default"))["index"]
    check_desc(d)
    assert d["name"] == "default" and d["dimension"] == 384 and d["metric"] == "cosine"


def test_create_describe_list_drop(api):
    name = "Ab_-" + uuid.uuid4().hex[:8]
    r = api.post("/api/indexes", {"name": name, "dimension": 7, "metric": "ip", "M": 12,
                                  "ef_construction": 80, "ef_search": 33})
    d = ok(r, 201)["index"]
    check_desc(d)
    assert (d["name"], d["dimension"], d["metric"], d["M"], d["ef_construction"], d["ef_search"],
            d["count"], d["deleted"]) == (name, 7, "ip", 12, 80, 33, 0, 0)
    assert ok(api.get("/api/indexes/" + name))["index"] == d
    lst = ok(api.get("/api/indexes"))["indexes"]
    names = [x["name"] for x in lst]
    assert names == sorted(names)
    assert name in names and "default" in names
    for x in lst:
        check_desc(x)
    ix = api.index(name)
    ok(ix.insert(1, [1.0] * 7), 201)
    assert ix.describe()["count"] == 1
    b = ok(api.delete("/api/indexes/" + name))
    assert b == {"deleted": True, "name": name}
    error(api.get("/api/indexes/" + name), 404, "not_found")
    error(ix.get(1), 404, "not_found")
    error(ix.search([1.0] * 7, 1), 404, "not_found")
    assert name not in [x["name"] for x in api.get("/api/indexes").json()["indexes"]]
    # the data went with it: a new index of the same name starts empty
    d2 = ok(api.post("/api/indexes", {"name": name, "dimension": 3}), 201)["index"]
    try:
        assert d2["count"] == 0 and d2["metric"] == "cosine" and d2["dimension"] == 3
        error(ix.get(1), 404, "not_found")
    finally:
        api.delete("/api/indexes/" + name)


def test_create_defaults_metric_cosine(make_index):
    d = make_index(5).describe()
    assert d["metric"] == "cosine" and d["count"] == 0
    assert d["M"] > 0 and d["ef_construction"] > 0 and d["ef_search"] > 0


def test_create_existing_is_409(api, make_index):
    ix = make_index(4, "l2")
    before = ix.describe()
    error(api.post("/api/indexes", {"name": ix.name, "dimension": 9, "metric": "ip"}), 409, "already_exists")
    error(api.post("/api/indexes", {"name": "default", "dimension": 384}), 409, "already_exists")
    assert ix.describe() == before


def test_drop_default_is_409(api):
    before = api.get("/api/indexes/default").json()
    error(api.delete("/api/indexes/default"), 409, "conflict")
    assert api.get("/api/indexes/default").json() == before


def test_drop_unknown_is_404(api):
    error(api.delete("/api/indexes/nope_" + uuid.uuid4().hex[:8]), 404, "not_found")
    error(api.get("/api/indexes/nope_" + uuid.uuid4().hex[:8]), 404, "not_found")


@pytest.mark.parametrize("body,status,code", [
    ({"dimension": 4}, 400, "invalid_argument"),                       # no name
    ({"name": "", "dimension": 4}, 400, "invalid_argument"),
    ({"name": "a" * 65, "dimension": 4}, 400, "invalid_argument"),
    ({"name": "has space", "dimension": 4}, 400, "invalid_argument"),
    ({"name": "dot.name", "dimension": 4}, 400, "invalid_argument"),
    ({"name": "slash/x", "dimension": 4}, 400, "invalid_argument"),
    ({"name": "é", "dimension": 4}, 400, "invalid_argument"),
    ({"name": 5, "dimension": 4}, 400, "invalid_argument"),
    ({"name": "NAME"}, 400, "invalid_argument"),                       # no dimension
    ({"name": "NAME", "dimension": "4"}, 400, "invalid_argument"),
    ({"name": "NAME", "dimension": 4.5}, 400, "invalid_argument"),
    ({"name": "NAME", "dimension": 0}, 422, "out_of_range"),
    ({"name": "NAME", "dimension": 65537}, 422, "out_of_range"),
    ({"name": "NAME", "dimension": 4, "metric": "manhattan"}, 400, "invalid_argument"),
    ({"name": "NAME", "dimension": 4, "metric": 1}, 400, "invalid_argument"),
    ({"name": "NAME", "dimension": 4, "M": "16"}, 400, "invalid_argument"),
    ({"name": "NAME", "dimension": 4, "M": 100000000}, 422, "out_of_range"),
    ({"name": "NAME", "dimension": 4, "ef_search": 100000000}, 422, "out_of_range"),
])
def test_create_rejects(api, body, status, code):
    name = "bad_" + uuid.uuid4().hex[:8]
    body = {k: (name if v == "NAME" else v) for k, v in body.items()}
    before = [x["name"] for x in api.get("/api/indexes").json()["indexes"]]
    try:
        error(api.post("/api/indexes", body), status, code)
        assert [x["name"] for x in api.get("/api/indexes").json()["indexes"]] == before
    finally:
        if isinstance(body.get("name"), str) and body["name"] not in before and "/" not in body["name"]:
            api.delete("/api/indexes/" + body["name"])


def test_name_limits_accepted(api):
    name = ("Zz09_-" + uuid.uuid4().hex * 4)[:64]
    ok(api.post("/api/indexes", {"name": name, "dimension": 1, "metric": "l2"}), 201)
    ok(api.delete("/api/indexes/" + name))
    ok(api.post("/api/indexes", {"name": "z", "dimension": 65536, "metric": "l2"}), 201)
    ok(api.delete("/api/indexes/z"))


def test_index_created_dim_1_roundtrip(make_index):
    ix = make_index(1, "l2")
    ok(ix.insert(0, [3.5]), 201)
    assert ok(ix.get(0))["vector"] == [3.5]
