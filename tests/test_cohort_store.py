"""The bounded feature store: LRU eviction within the byte budget, float16 storage, read-ahead, counters,
preflight errors."""

import time

import h5py
import numpy as np
import pytest
import torch

from mustsurv.cohort.store import GIB, Bag, FeatureStore, announce
from mustsurv.models.batch import collate

D = 16


def write_bag(path, n, value=None, d=D, seed=0):
    """A TRIDENT-style features file of n patches."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, d)).astype(np.float32) if value is None else np.full((n, d), value, np.float32)
    with h5py.File(path, "w") as h5:
        h5["features"] = feats
        h5["coords"] = np.zeros((n, 2), dtype=np.int64)
    return str(path), feats


@pytest.fixture
def bags(tmp_path):
    """Ten patients of 10 patches each (10 x 16 x 2 = 320 bytes in float16)."""
    return {f"P{i}": [write_bag(tmp_path / f"P{i}.h5", 10, seed=i)[0]] for i in range(10)}


def gib(n_bytes):
    return n_bytes / GIB


def test_lru_eviction_order_and_budget(bags):
    store = FeatureStore(budget_gb=gib(3 * 320), read_ahead=0)  # room for three bags
    for p in ["P0", "P1", "P2"]:
        store.get(p, bags[p])
    store.get("P0", bags["P0"])  # P0 becomes the most recently used: P1 is now the oldest
    store.get("P3", bags["P3"])
    assert list(store._bags) == ["P2", "P0", "P3"] and store.evicted == 1
    held = []
    for p in ["P4", "P0", "P5", "P6", "P7", "P2", "P8"]:
        store.get(p, bags[p])
        held.append(store.nbytes)
    assert max(held) <= store.budget and store.nbytes == 3 * 320
    assert store.files_read == store.misses == 10 and store.hits == 2  # P0 twice while cached
    before = store.files_read
    store.get("P8", bags["P8"])  # the most recent one is still there
    assert store.files_read == before


def test_float16_storage_round_trip(tmp_path):
    path, feats = write_bag(tmp_path / "a.h5", 50)
    store = FeatureStore(read_ahead=0)
    bag = store.get("A", [path])
    assert bag.dtype == torch.float32 and store._bags["A"].dtype == torch.float16
    assert store.nbytes == 50 * D * 2  # half the float32 bytes
    np.testing.assert_array_equal(bag.numpy(), feats.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(bag.numpy(), feats, rtol=1e-3, atol=1e-3)
    full = FeatureStore(dtype=torch.float32, read_ahead=0).get("A", [path])
    np.testing.assert_array_equal(full.numpy(), feats)


def test_bag_larger_than_budget_is_served_uncached(tmp_path):
    path, feats = write_bag(tmp_path / "big.h5", 100)
    store = FeatureStore(budget_gb=gib(1000), dtype=torch.float32, read_ahead=0)
    np.testing.assert_array_equal(store.get("B", [path]).numpy(), feats)
    assert len(store) == 0 and store.nbytes == 0 and store.uncached == 1


def test_read_ahead_prefetches_the_announced_order(bags):
    store = FeatureStore(budget_gb=gib(4 * 320), read_ahead=2)
    order = [f"P{i}" for i in range(10)]
    items = [{"pathology": Bag(store, p, bags[p])} for p in order]
    assert announce(items) is store
    for p in order:
        deadline = time.time() + 10
        while p not in store._bags and time.time() < deadline:  # the thread reads it: give it time
            time.sleep(0.01)
        store.get(p, bags[p])
        assert store.nbytes <= store.budget
    assert store.hits == 10 and store.misses == 0 and store.prefetched == 10
    assert store.counters()["hit_rate"] == 1.0 and store.files_read == 10
    deadline = time.time() + 10
    while store._thread is not None and time.time() < deadline:  # the thread ends with its plan
        time.sleep(0.01)
    assert store._thread is None


def test_without_an_announcement_every_read_is_a_miss(bags):
    store = FeatureStore(budget_gb=gib(4 * 320), read_ahead=2)
    for p in bags:
        store.get(p, bags[p])
    assert store.hits == 0 and store.misses == 10 and store.prefetched == 0


def test_read_ahead_keeps_its_bags_within_half_the_budget(bags):
    store = FeatureStore(budget_gb=gib(3 * 320), read_ahead=5)  # half the budget holds one bag
    store.plan([(p, bags[p]) for p in bags])
    deadline = time.time() + 5
    while store.prefetched < 1 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert store.prefetched == 1 and list(store._bags) == ["P0"]  # it waits for the caller
    store.close()


def test_caller_and_thread_share_a_bag_read_once(tmp_path):
    """A bag the thread is reading is waited for, not read again; the results are the caller's bag."""
    paths = {f"Q{i}": [write_bag(tmp_path / f"Q{i}.h5", 2000, seed=i)[0]] for i in range(6)}
    store = FeatureStore(read_ahead=3)
    store.plan([(p, v) for p, v in paths.items()])
    results = [store.get(p, v) for p, v in paths.items()]
    assert store.files_read == 6 and store.hits + store.misses == 6
    for (p, v), bag in zip(paths.items(), results):
        with h5py.File(v[0]) as h5:
            np.testing.assert_array_equal(bag.numpy(), h5["features"][()].astype(np.float16).astype(np.float32))


def test_collate_loads_lazy_bags_and_counters(bags):
    store = FeatureStore(budget_gb=gib(10 * 320), read_ahead=0)
    items = [{"patient_id": p, "pathology": Bag(store, p, bags[p]), "genomics": None, "time": 1.0, "event": 1,
              "bin": 0} for p in ["P0", "P1"]]
    assert store.files_read == 0 and items[0]["pathology"].shape == (10, D)
    batch = collate(items)
    assert [tuple(b.shape) for b in batch.pathology] == [(10, D), (10, D)]
    collate(items)
    c = store.counters()
    assert (c["files_read"], c["hits"], c["misses"], c["hit_rate"]) == (2, 2, 2, 0.5)


def test_preflight_mixed_dimensions_names_the_files(tmp_path):
    a = write_bag(tmp_path / "a.h5", 5, d=16)[0]
    b = write_bag(tmp_path / "b.h5", 5, d=24)[0]
    store = FeatureStore()
    assert store.preflight({"A": [a]}) == 16
    with pytest.raises(ValueError, match="mix dimensions") as err:
        store.preflight({"B": [b]})  # also across calls (another part of the cohort)
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_preflight_bag_above_the_budget_names_the_setting(tmp_path):
    small = write_bag(tmp_path / "s.h5", 10)[0]
    big = [write_bag(tmp_path / "b1.h5", 60)[0], write_bag(tmp_path / "b2.h5", 60)[0]]
    store = FeatureStore(budget_gb=gib(100 * D * 2))  # 100 patches in float16
    assert store.preflight({"S": [small]}) == D
    with pytest.raises(ValueError, match="training.feature_cache_gb") as err:
        store.preflight({"S": [small], "BIG": big})
    assert "BIG" in str(err.value) and all(p in str(err.value) for p in big) and "120 patches" in str(err.value)
    FeatureStore(budget_gb=gib(120 * D * 2)).preflight({"BIG": big})  # exactly fits



def test_a_failed_read_ahead_leaves_the_error_to_the_caller(bags, tmp_path):
    missing = [str(tmp_path / "gone.h5")]
    store = FeatureStore(read_ahead=2)
    store.plan([("P0", bags["P0"])])
    store.get("P0", bags["P0"])
    write_bag(tmp_path / "gone.h5", 5)
    store.plan([("G", missing), ("P1", bags["P1"])])  # metadata read now; the file disappears before the read
    (tmp_path / "gone.h5").unlink()
    with pytest.raises(FileNotFoundError, match="gone.h5"):
        store.get("G", missing)
    assert store.get("P1", bags["P1"]).shape == (10, D)
    store.close()


def test_a_new_plan_is_not_blocked_by_bags_read_ahead_for_the_old_one(bags):
    store = FeatureStore(budget_gb=gib(3 * 320), read_ahead=5)  # the thread may hold one unread bag
    store.plan([("P0", bags["P0"]), ("P1", bags["P1"])])
    deadline = time.time() + 10
    while store.prefetched < 1 and time.time() < deadline:
        time.sleep(0.01)
    store.plan([("P5", bags["P5"])])  # P0 was never asked for
    while store.prefetched < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert store.prefetched == 2 and "P5" in store._bags
    store.get("P5", bags["P5"])
    assert store.hits == 1
    store.close()
