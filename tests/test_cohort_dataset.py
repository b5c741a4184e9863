import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from mustsurv.cohort.dataset import CohortFoldDataset
from mustsurv.cohort.splits import build_folds, write_fold
from mustsurv.cohort.store import GIB, FeatureStore, FoldScaler
from mustsurv.cohort.table import (
    CohortInputError,
    build_cohort_table,
    write_cohort_table,
)
from mustsurv.models.batch import collate
from mustsurv.omics.tokens import build_tokens, write_tokens
from mustsurv.slides.summary import SUMMARY_COLUMNS, read_summary

D = 8
FAMILIES = {"TSG": ["TP53", "RB1"], "Onc": ["KRAS"]}


@pytest.fixture
def cohort(tmp_path):
    """20 patients: 0-14 have slides (patients 0-2 two slides, 3 only an empty_mask slide), 5-19 have omics."""
    rng = np.random.default_rng(0)
    pats = [f"TCGA-AA-{i:04d}" for i in range(20)]
    rows = []
    for i, p in enumerate(pats[:15]):
        for k in range(2 if i < 3 else 1):
            sid = f"{p}-01Z-00-DX{k + 1}"
            n = 3 + i + k
            path = tmp_path / "features" / f"{sid}.h5"
            path.parent.mkdir(exist_ok=True)
            with h5py.File(path, "w") as h5:
                h5["features"] = np.full((n, D), i * 10 + k, dtype=np.float32)
                h5["coords"] = np.zeros((n, 2), dtype=np.int64)
            status = "empty_mask" if i == 3 else "ok"
            rows.append((sid, p, status, 0 if i == 3 else n, 0.5, 20, str(path)))
    summary = tmp_path / "summary.tsv"
    pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).to_csv(summary, sep="\t", index=False)
    g = pats[5:]
    feats = pd.DataFrame({
        "TP53_rnaseq": rng.normal(5.0, 2.0, len(g)),
        "RB1_cnv": rng.integers(-2, 3, len(g)).astype(float),
        "KRAS_mut": rng.integers(0, 2, len(g)).astype(float),
    }, index=g)
    feats.iloc[0, 0] = np.nan  # a missing RNA value
    tokens = tmp_path / "tokens.h5"
    write_tokens(tokens, build_tokens(feats, FAMILIES))
    survival = pd.DataFrame({"patient_id": pats, "time": rng.uniform(1, 60, 20).round(2),
                             "event": [1, 0] * 10})
    table = build_cohort_table(survival, genomics_patients=g, summary=read_summary(summary))
    table_path = tmp_path / "cohort.tsv"
    write_cohort_table(table, table_path)
    record = build_folds(table, folds=4, seed=0, n_bins=2, validation_fraction=0.0)[0]
    split = tmp_path / "fold0.json"
    write_fold(split, record)
    return {"table": table_path, "tokens": tokens, "split": split, "summary": summary, "record": record,
            "feats": feats}


def test_items_bags_tokens_and_bins(cohort):
    train = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part="train")
    test = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part="test",
                             scaler=train.scaler)
    # patient 3 has only an unusable slide and no omics: not in the cohort
    assert sorted(train.patients + test.patients) == [f"TCGA-AA-{i:04d}" for i in range(20) if i != 3]
    assert train.family_sizes == [2, 1] and train.family_names == ["TSG", "Onc"] and train.pathology_dim == D
    assert train.bin_edges == cohort["record"]["bin_edges"]
    for ds in (train, test):
        for i in range(len(ds)):
            item = ds[i]
            idx = int(item["patient_id"][-4:])
            if idx < 15:
                n_expected = (3 + idx) + (4 + idx if idx < 3 else 0)
                bag = item["pathology"].load()
                assert item["pathology"].shape == bag.shape == (n_expected, D) and bag.dtype == torch.float32
                if idx < 3:  # two slides concatenated in slide order
                    assert bag[0, 0] == idx * 10 and bag[-1, 0] == idx * 10 + 1
            else:
                assert item["pathology"] is None
            if idx >= 5:
                assert [t.shape for t in item["genomics"]] == [(2,), (1,)]
                assert all(torch.isfinite(t).all() for t in item["genomics"])
            else:
                assert item["genomics"] is None
            expected_bin = int(np.searchsorted(ds.bin_edges[1:-1], item["time"], side="right"))
            assert item["bin"] == expected_bin and item["event"] in (0, 1)


def test_scaler_fit_on_training_fold_only(cohort):
    train = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part="train")
    feats = cohort["feats"]
    g_train = [p for p in train.patients if p in feats.index]
    rna = feats.loc[g_train, "TP53_rnaseq"]
    # RNA standardised with the training patients' mean/std (NaN -> training mean -> 0); CNV/mutation raw
    scaled = np.array([train[train.patients.index(p)]["genomics"][0][1].item() for p in g_train])
    expected = ((rna - rna.mean()) / rna.std(ddof=0)).fillna(0.0).to_numpy()
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-6)
    cnv = np.array([train[train.patients.index(p)]["genomics"][0][0].item() for p in g_train])
    np.testing.assert_array_equal(cnv, feats.loc[g_train, "RB1_cnv"].to_numpy())
    # the test part uses exactly those statistics; without a scaler it refuses to fit on test patients
    test = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part="test",
                             scaler=FoldScaler.from_state_dict(train.scaler.state_dict()))
    for i, p in enumerate(test.patients):
        if p in feats.index and np.isfinite(feats.at[p, "TP53_rnaseq"]):
            want = (feats.at[p, "TP53_rnaseq"] - rna.mean()) / rna.std(ddof=0)
            assert test[i]["genomics"][0][1].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="train part's scaler"):
        CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part="test")


def test_store_reads_each_file_once(cohort):
    store = FeatureStore(dtype=torch.float32)
    train = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], store=store)
    assert store.files_read == 0  # items hold lazy bags: building the dataset reads metadata only
    first = [train[i]["pathology"] for i in range(len(train))]
    assert store.files_read == 0
    first = [None if b is None else b.load() for b in first]
    n_read = store.files_read
    assert n_read == sum(len(train._paths[p]) for p in train._paths) > 0
    second = [None if b is None else b.load() for b in (train[i]["pathology"] for i in range(len(train)))]
    assert store.files_read == n_read  # the second epoch reads no file
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(first, second))
    half = FeatureStore(dtype=torch.float16)
    train16 = CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], store=half)
    bags = [b.load() for b in (train16[i]["pathology"] for i in range(len(train16))) if b is not None]
    assert all(b.dtype == torch.float32 for b in bags) and half.nbytes * 2 == store.nbytes


def test_stale_inputs_are_reported(cohort, tmp_path):
    record = dict(cohort["record"], train=cohort["record"]["train"] + ["TCGA-ZZ-0000"])
    stale = tmp_path / "stale.json"
    write_fold(stale, record)
    with pytest.raises(CohortInputError, match="stale"):
        CohortFoldDataset(cohort["table"], cohort["tokens"], stale, cohort["summary"])
    with pytest.raises(CohortInputError, match="no tokens.h5"):
        CohortFoldDataset(cohort["table"], None, cohort["split"], cohort["summary"])


def test_folds_of_one_job_share_a_store_and_read_each_bag_once(cohort, tmp_path):
    """A training job runs every fold of its cohort: with one store, a bag read for fold 0 is not read again."""
    from mustsurv.cohort.splits import build_folds, write_fold
    from mustsurv.cohort.table import read_cohort_table
    from mustsurv.train.data import fold_datasets

    records = build_folds(read_cohort_table(cohort["table"]), folds=4, seed=0, n_bins=2, validation_fraction=0.0)
    splits = []
    for k, record in enumerate(records):
        write_fold(tmp_path / f"f{k}.json", record)
        splits.append(tmp_path / f"f{k}.json")
    store = FeatureStore()
    reads = []
    for split in splits:
        data = fold_datasets(cohort["table"], split, cohort["tokens"], cohort["summary"], store=store)
        train, test = data.train, data.test
        for part in (train, test):
            for i in range(len(part)):
                collate([part[i]])
        reads.append(store.files_read)
    assert reads[0] == reads[-1] > 0  # every patient is in fold 0's train or test part; later folds read nothing
    fresh = FeatureStore()
    train = fold_datasets(cohort["table"], splits[1], cohort["tokens"], cohort["summary"], store=fresh).train
    for i in range(len(train)):
        collate([train[i]])
    assert fresh.files_read > 0  # without the shared store the files are read again


def test_dataset_construction_runs_the_preflight(cohort):
    """A cohort whose largest bag exceeds the cache budget fails when its datasets are built, before training."""
    biggest = 7  # room for 7 patches in float16: most bags of the train part are larger
    with pytest.raises(ValueError, match="feature_cache_gb"):
        CohortFoldDataset(cohort["table"], cohort["tokens"], cohort["split"], cohort["summary"], part=("train",),
                          store=FeatureStore(budget_gb=biggest * D * 2 / GIB))
