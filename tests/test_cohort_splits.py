import json
import logging

import numpy as np
import pandas as pd
import pytest

from mustsurv.cohort.splits import (
    assign_bins,
    bin_edges,
    build_folds,
    fold_record,
    make_splits,
    read_external_splits,
    read_fold,
    write_fold,
)
from mustsurv.cohort.table import CohortInputError


def _table(n=103, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "patient_id": [f"TCGA-{i // 100:02d}-{i % 100:04d}" for i in range(n)],
        "time": np.round(rng.exponential(30, n), 2) + 0.1,
        "event": (rng.uniform(size=n) < 0.45).astype(int),
        "has_pathology": 1, "has_genomics": 1, "slides": "",
    })


def test_every_patient_in_exactly_one_test_fold():
    table = _table()
    records = build_folds(table, folds=5, seed=3, n_bins=4, validation_fraction=0.0)
    tests = [set(r["test"]) for r in records]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not tests[i] & tests[j]  # no patient in two test folds
    assert set().union(*tests) == set(table["patient_id"])  # every patient in one
    for r in records:
        assert not set(r["train"]) & set(r["test"])
        assert set(r["train"]) | set(r["test"]) == set(table["patient_id"])
        assert 19 <= r["n_test"] <= 22


def test_validation_is_a_seeded_stratified_share_of_the_outer_training_fold():
    table = _table(200, seed=4)
    records = build_folds(table, folds=5, seed=3, n_bins=4, validation_fraction=0.2)
    for r in records:
        train, val, test = set(r["train"]), set(r["validation"]), set(r["test"])
        assert not train & val and not (train | val) & test
        assert train | val | test == set(table["patient_id"])
        assert r["n_validation"] == round(0.2 * (r["n_train"] + r["n_validation"]))
        outer_rate = (r["events_train"] + r["events_validation"]) / (r["n_train"] + r["n_validation"])
        assert abs(r["events_validation"] / r["n_validation"] - outer_rate) < 0.06  # stratified on event
    again = build_folds(table.sample(frac=1.0, random_state=1), folds=5, seed=3, n_bins=4, validation_fraction=0.2)
    assert [r["validation"] for r in again] == [r["validation"] for r in records]
    other = build_folds(table, folds=5, seed=4, n_bins=4, validation_fraction=0.2)
    assert [r["validation"] for r in other] != [r["validation"] for r in records]
    none = build_folds(table, folds=5, seed=3, n_bins=4, validation_fraction=0.0)
    assert all(r["validation"] == [] for r in none)
    # the bins come from the whole outer training fold, whatever the validation share
    assert [r["bin_edges"] for r in none] == [r["bin_edges"] for r in records]


def test_a_validation_share_that_leaves_no_training_patients_is_an_error():
    from mustsurv.cohort.splits import validation_subset

    with pytest.raises(CohortInputError, match="validation_fraction"):
        validation_subset(["a", "b", "c"], np.array([1.0, 2, 3]), np.array([1, 0, 1]), 0.9, seed=0)


def test_splits_seeded_stratified_and_order_independent():
    table = _table(200, seed=1)
    a = make_splits(table["patient_id"].tolist(), table["time"].to_numpy(), table["event"].to_numpy(), 5, seed=7)
    shuffled = table.sample(frac=1.0, random_state=0)
    b = make_splits(shuffled["patient_id"].tolist(), shuffled["time"].to_numpy(), shuffled["event"].to_numpy(), 5,
                    seed=7)
    c = make_splits(table["patient_id"].tolist(), table["time"].to_numpy(), table["event"].to_numpy(), 5, seed=8)
    assert a == b and a != c
    ev = table.set_index("patient_id")["event"]
    tm = table.set_index("patient_id")["time"]
    total = ev.mean()
    for _, test in a:
        assert abs(ev[test].mean() - total) < 0.06  # events balanced across folds
        assert abs(tm[test].median() - tm.median()) < 0.35 * tm.median()  # and times


def test_bin_edges_depend_only_on_training_patients():
    table = _table()
    k = 2
    record = build_folds(table, folds=5, seed=0, n_bins=4, validation_fraction=0.0)[k]
    edges = record["bin_edges"]
    assert len(edges) == 5 and edges[0] == 0.0 and edges[-1] == float("inf")
    assert all(a <= b for a, b in zip(edges, edges[1:]))
    train = table.set_index("patient_id").loc[record["train"]]
    expected = np.quantile(train.loc[train["event"] == 1, "time"], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(edges[1:4], expected)
    # changing test patients' times and events (to extremes) leaves the edges unchanged
    changed = table.copy()
    is_test = changed["patient_id"].isin(record["test"])
    changed.loc[is_test, "time"] = 1e4
    changed.loc[is_test, "event"] = 1
    split = (record["train"], record["test"])
    assert fold_record(k, 5, split, changed, 4, "x", 0, 0.0, 0)["bin_edges"] == edges
    # ... while changing a training patient's uncensored time does move them
    moved = table.copy()
    first_event = train.index[train["event"] == 1][0]
    moved.loc[moved["patient_id"] == first_event, "time"] = 1e4
    assert fold_record(k, 5, split, moved, 4, "x", 0, 0.0, 0)["bin_edges"] != edges
    # every time of every patient, test patients' extremes included, falls in a bin 0..K-1
    bins = assign_bins(changed["time"].to_numpy(), edges)
    assert bins.min() >= 0 and bins.max() <= 3


def test_bin_assignment_is_left_closed():
    edges = [0.0, 10.0, 20.0, 30.0, float("inf")]
    np.testing.assert_array_equal(assign_bins([0.0, 9.99, 10.0, 25.0, 30.0, 500.0], edges), [0, 0, 1, 2, 3, 3])
    with pytest.raises(CohortInputError, match="uncensored"):
        bin_edges(np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1]), 4)


def test_fold_json_roundtrip(tmp_path):
    record = build_folds(_table(), folds=5, seed=0, n_bins=4, validation_fraction=0.0)[0]
    path = tmp_path / "splits" / "fold0.json"
    write_fold(path, record)
    back = read_fold(path)
    assert back == record and back["bin_edges"][-1] == float("inf")
    path.write_text(json.dumps({"train": []}))
    with pytest.raises(CohortInputError, match="cohort_splits rule"):
        read_fold(path)


def _write_external(tmp_path, train_val_pairs):
    for k, (train, val) in enumerate(train_val_pairs):
        n = max(len(train), len(val))
        pd.DataFrame({"train": train + [None] * (n - len(train)), "val": val + [None] * (n - len(val))}).to_csv(
            tmp_path / f"splits_{k}.csv")


def test_external_mcat_splits_honoured(tmp_path, caplog):
    table = _table(20, seed=2)  # every test fold has an event
    pats = table["patient_id"].tolist()
    parts = [pats[i::4] for i in range(4)]
    pairs = [([p for j, q in enumerate(parts) if j != k for p in q] + ["TCGA-99-9999"], parts[k]) for k in range(4)]
    _write_external(tmp_path, pairs)
    assert (tmp_path / "splits_0.csv").read_text().startswith(",train,val")
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        records = build_folds(table, folds=4, seed=0, n_bins=2, validation_fraction=0.0, splits_dir=tmp_path)
    for k, r in enumerate(records):
        assert r["test"] == sorted(parts[k]) and "TCGA-99-9999" not in r["train"]
        assert r["source"].endswith(f"splits_{k}.csv")
    assert "not in the cohort table" in caplog.text


def test_a_test_fold_without_events_is_an_error_naming_the_split_file(tmp_path):
    table = _table(20)  # seed 0: the third quarter of the patients has no event
    pats = table["patient_id"].tolist()
    parts = [pats[i::4] for i in range(4)]
    _write_external(tmp_path, [([p for j, q in enumerate(parts) if j != k for p in q], parts[k]) for k in range(4)])
    with pytest.raises(CohortInputError, match=r"fold 2 \(.*splits_2\.csv\): none of its 5 test patients has an event"):
        build_folds(table, folds=4, seed=0, n_bins=2, validation_fraction=0.0, splits_dir=tmp_path)


@pytest.mark.parametrize("problem, message", [("overlap", "both train and val"), ("twice", "also in the val column"),
                                              ("missing", "split file missing")])
def test_external_splits_bad_input(tmp_path, problem, message):
    pats = _table(12)["patient_id"].tolist()
    pairs = [(pats[6:], pats[:6]), (pats[:6], pats[6:])]
    if problem == "overlap":
        pairs[0] = (pats[5:], pats[:6])
    elif problem == "twice":
        pairs[1] = (pats[1:6], [pats[0]] + pats[6:])
    _write_external(tmp_path, pairs)
    folds = 3 if problem == "missing" else 2
    with pytest.raises(CohortInputError, match=message) as err:
        read_external_splits(tmp_path, folds, pats)
    assert str(tmp_path) in str(err.value)


def test_real_mcat_splits(shared_data):
    from mustsurv.omics.survival import read_mcat_csv

    surv = read_mcat_csv(shared_data / "tcga_omics" / "tcga_blca_all_clean.csv.zip").survival
    table = surv.assign(event=surv["event"].astype(int), has_pathology=0, has_genomics=1, slides="")
    records = build_folds(table, folds=5, seed=0, n_bins=4, validation_fraction=0.2, splits_dir=shared_data / "splits" / "tcga_blca")
    assert [r["n_test"] for r in records] == [75, 75, 75, 74, 74]
    assert sum(r["n_test"] for r in records) == len(set().union(*[r["test"] for r in records])) == 373


def test_config_checks_splits_dir_and_families(tmp_path):
    from mustsurv.config import ConfigError, check_config, fill_defaults
    from mustsurv.study.design import StudyDesign

    csv = tmp_path / "all_clean.csv"
    csv.write_text("case_id,survival_months,censorship,TP53_rnaseq\n")
    fam = tmp_path / "sig.csv"
    fam.write_text("A\nTP53\n")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "splits_0.csv").write_text(",train,val\n")
    block = {"mcat_csv": str(csv), "gene_families": str(fam), "splits_dir": str(tmp_path / "splits")}
    config = {"cohorts": {"X": block}, "cv": {"folds": 2}, "omics": {"rna_transform": "auto"}}
    with pytest.raises(ConfigError, match=r"splits_dir.*splits_1\.csv"):
        check_config(config)
    (tmp_path / "splits" / "splits_1.csv").write_text(",train,val\n")
    check_config(config)
    study = StudyDesign(fill_defaults(config))
    assert study.has_genomics("X") and not study.has_pathology("X") and study.rna_transform("X") == "auto"
    block["rna_transform"] = "none"
    assert study.rna_transform("X") == "none"
    del block["gene_families"]
    with pytest.raises(ConfigError, match="gene_families"):
        check_config(config)


def _sited_table(n_sites=8, per_site=12, seed=1):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(per_site // 2, per_site * 2, n_sites)  # unequal sites
    ids = [f"TCGA-{chr(65 + s)}{s}-{i:04d}" for s in range(n_sites) for i in range(sizes[s])]
    n = len(ids)
    return pd.DataFrame({"patient_id": ids, "time": np.round(rng.exponential(30, n), 2) + 0.1,
                         "event": (rng.uniform(size=n) < 0.5).astype(int), "has_pathology": 1, "has_genomics": 1,
                         "slides": ""})


def test_group_by_site_keeps_each_site_in_one_test_fold_and_out_of_its_validation():
    table = _sited_table()
    site = dict(zip(table["patient_id"], table["patient_id"].str[5:7]))
    records = build_folds(table, folds=4, seed=0, n_bins=4, validation_fraction=0.25, group_by="site")
    test_sites = [{site[p] for p in r["test"]} for r in records]
    for i, a in enumerate(test_sites):
        assert a and all(not a & b for b in test_sites[i + 1:])  # a site is tested in one fold only
    assert set().union(*test_sites) == set(site.values())
    for r, tested in zip(records, test_sites):
        train_sites = {site[p] for p in r["train"]}
        val_sites = {site[p] for p in r["validation"]}
        assert r["group_by"] == "site" and r["validation"]
        assert not (train_sites | val_sites) & tested  # no test site is seen in training
        assert not train_sites & val_sites  # validation patients are whole sites
    # without grouping the same table mixes sites across test folds (the check above is not vacuous)
    plain = build_folds(table, folds=4, seed=0, n_bins=4, validation_fraction=0.25)
    plain_sites = [{site[p] for p in r["test"]} for r in plain]
    assert any(a & b for i, a in enumerate(plain_sites) for b in plain_sites[i + 1:])


def test_group_by_site_with_fewer_sites_than_folds_says_so():
    table = _sited_table(n_sites=3)
    with pytest.raises(CohortInputError, match=r"3 tissue source site\(s\) \(A0, B1, C2\) for 5 folds.*lower `cv.folds`"):
        build_folds(table, folds=5, seed=0, n_bins=2, validation_fraction=0.2, group_by="site")
    inhouse = table.assign(patient_id=[f"P-{i:03d}" for i in range(len(table))])
    with pytest.raises(CohortInputError, match="not a TCGA barcode"):
        build_folds(inhouse, folds=2, seed=0, n_bins=2, validation_fraction=0.2, group_by="site")


def test_external_splits_under_a_patient_id_rule(tmp_path):
    ids = [f"P-{i:03d}" for i in range(6)]
    for k in range(2):
        test = ids[3 * k:3 * k + 3]
        pd.DataFrame({"train": [f"{p}-T" for p in ids if p not in test], "val": [f"{p}-T" for p in test]}).to_csv(
            tmp_path / f"splits_{k}.csv")
    splits = read_external_splits(tmp_path, 2, ids, rule=r"^(P-\d+)")
    assert splits[0] == (ids[3:], ids[:3]) and splits[1] == (ids[:3], ids[3:])
