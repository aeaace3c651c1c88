"""Several Python threads on one Database: the GIL is released during C
calls, concurrent searches give the answers a lone thread gets, writers
and searchers run together, errors stay per thread, and close() waits for
calls in flight. (Scaling is measured in bench/python, not here.)
"""
import threading
import time

import numpy as np
import pytest

import quartz
from conftest import clustered

DIM = 32


@pytest.fixture(scope="module")
def data():
    return clustered(20000, DIM, 16, 7)


@pytest.fixture
def db(data):
    d = quartz.open(dim=DIM, metric="l2", M=12, ef_construction=64)
    d.add(np.arange(len(data)), data)
    yield d
    d.close()


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def test_the_gil_is_released_during_a_search(db, data):
    # One long batch search runs in a worker; the main thread counts how many
    # Python loop iterations it gets while the worker is inside C. If the call
    # held the GIL, the main thread could not run at all until it returned.
    q = np.tile(data[:2000], (1, 1))
    t0 = time.perf_counter()
    db.search(q, k=10, ef=200)
    one = time.perf_counter() - t0
    reps = max(1, int(0.3 / max(one, 1e-6)))
    big = np.ascontiguousarray(np.tile(q, (reps, 1)))
    started = threading.Event()
    done = threading.Event()

    def worker():
        started.set()
        db.search(big, k=10, ef=200)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    print("main-thread iterations during a %d-query search: %d" % (len(big), spins))
    assert spins > 20000


def test_concurrent_searches_match_a_single_thread(db, data):
    queries = data[::50] + 0.01
    want = db.search(queries, k=10, ef=80)
    got = {}

    def searcher(i):
        if i % 2:
            got[i] = db.search(queries, k=10, ef=80)
        else:  # one query at a time
            rows = [db.search(q, k=10, ef=80) for q in queries]
            got[i] = quartz.SearchResult(np.vstack([r.ids for r in rows]), np.vstack([r.distances for r in rows]),
                                         np.array([r.counts for r in rows], dtype=np.uintp))

    run_threads(6, searcher)
    for i, r in got.items():
        np.testing.assert_array_equal(r.ids, want.ids)
        np.testing.assert_array_equal(r.distances, want.distances)
        np.testing.assert_array_equal(r.counts, want.counts)


def test_writers_and_searchers_run_together(db, data):
    extra = data[:4000] + 0.05 * clustered(4000, DIM, 0, 8)  # near the stored rows
    stop = threading.Event()
    seen_deleted = []

    def work(i):
        if i < 2:  # writers: distinct id ranges, then delete half of their rows
            base = 100000 + i * 2000
            for s in range(0, 2000, 100):
                db.add(np.arange(base + s, base + s + 100), extra[i * 2000 + s:i * 2000 + s + 100])
            db.delete(np.arange(base, base + 2000, 2))
            for s in range(1, 2000, 2):
                assert base + s in db
        elif i < 4:  # searchers while the writes go on
            while not stop.is_set():
                r = db.search(data[i::997], k=10)
                assert np.all(r.counts == 10)
        else:
            time.sleep(0.01)

    writers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    errors = []

    def searcher(i):
        try:
            work(i)
        except BaseException as e:
            errors.append(e)
    searchers = [threading.Thread(target=searcher, args=(i,)) for i in (2, 3)]
    for t in writers + searchers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    for t in searchers:
        t.join(120)
    assert not errors, errors
    assert len(db) == len(data) + 2000
    db.check()
    own = np.concatenate([np.arange(100001, 102000, 2), np.arange(102001, 104000, 2)])
    ids, _ = db.search(extra[1::2], k=10, ef=100)
    assert np.mean([o in row for o, row in zip(own.tolist(), ids.tolist())]) > 0.95
    ids, _ = db.search(extra[0::2], k=10, ef=100)
    assert not np.isin(ids, own - 1).any()  # the deleted rows are never returned


def test_error_messages_stay_with_their_thread(db):
    barrier = threading.Barrier(4)
    msgs = {}

    def fail(i):
        barrier.wait()
        for _ in range(200):
            try:
                if i % 2:
                    db.search(np.ones(DIM + i), k=1)
                else:
                    db.get(10 ** 9 + i)
            except quartz.QuartzError as e:
                msgs.setdefault(i, set()).add((type(e).__name__, e.message))

    run_threads(4, fail)
    for i, m in msgs.items():
        assert len(m) == 1, m
        name, text = m.pop()
        if i % 2:
            assert name == "DimensionError" and "%d dimensions" % (DIM + i) in text
        else:
            assert name == "NotFoundError" and str(10 ** 9 + i) in text


def test_close_waits_for_calls_in_flight_and_later_calls_fail_cleanly(data):
    db = quartz.open(dim=DIM, metric="l2", M=12, ef_construction=64)
    db.add(np.arange(5000), data[:5000])
    outcomes = []
    started = threading.Barrier(4)

    def searcher(i):
        started.wait()
        n = 0
        try:
            while True:
                r = db.search(data[i:i + 500], k=10)
                assert np.all(r.counts == 10)
                n += 1
        except quartz.ClosedError:
            outcomes.append(n)

    ts = [threading.Thread(target=searcher, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    started.wait()
    time.sleep(0.2)
    db.close()
    for t in ts:
        t.join(60)
        assert not t.is_alive()
    assert len(outcomes) == 3
    assert db.closed
