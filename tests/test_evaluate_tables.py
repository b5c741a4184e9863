import numpy as np
import pandas as pd
import pytest

from mustsurv.evaluate.predictions import read_predictions, write_predictions
from mustsurv.evaluate.tables import (
    PredictionFile,
    add_ranks,
    fold_cindices,
    oracle_cindices,
    paper_table,
)
from mustsurv.survival.metrics import c_index


def _pred(rng, n, scenarios, signal):
    time = rng.exponential(30, n)
    event = rng.uniform(size=n) < 0.6
    rows = []
    for s in scenarios:
        risk = -signal * np.log(time) + rng.normal(0, 1, n)
        rows += [dict(patient_id=f"P{i}", scenario=s, risk=risk[i], time=time[i], event=int(event[i]),
                      train_median_risk=0.0)
                 for i in range(n)]
    df = pd.DataFrame(rows)
    surv = np.exp(-np.outer(np.exp(df["risk"]), [0.1, 0.2, 0.4, 0.8]))  # (N, 4), non-increasing along the bins
    df[[f"survival_{k}" for k in range(1, 5)]] = surv
    return df


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for cohort in ("A", "B"):
        for fold in range(3):
            for method, scen, sig in (("must", ["complete", "missing_genomics", "missing_pathology"], 2.0),
                                      ("abmil", ["missing_genomics"], 0.5)):
                path = tmp_path / f"{cohort}_{method}_{fold}.tsv"
                write_predictions(_pred(rng, 40, scen, sig), path)
                out.append(PredictionFile(cohort, method, fold, str(path)))
    return out


def test_long_table_matches_direct_cindex(files):
    long = fold_cindices(files)
    assert len(long) == 2 * 3 * (3 + 1)
    f = files[0]
    df = read_predictions(f.path)
    part = df[df.scenario == "complete"]
    row = long[(long.method == f.method) & (long.cohort == f.cohort) & (long.fold == f.fold)
               & (long.scenario == "complete")]
    assert row["cindex"].item() == pytest.approx(c_index(part.time, part.event, part.risk))


def test_paper_layout_cells_overall_and_marks(files):
    long = fold_cindices(files)
    table = paper_table(long, ["A", "B"], ["abmil", "must"], dagger={"must": False, "abmil": True})
    assert list(table.columns) == ["method", "P", "G", "†", "A", "B", "Overall"]
    assert table[["method", "P", "G"]].values.tolist() == [
        ["abmil", "●", "○"], ["must", "●", "●"], ["must", "●", "○"], ["must", "○", "●"]]
    vals = long[(long.method == "must") & (long.scenario == "complete") & (long.cohort == "A")]["cindex"]
    assert table.loc[1, "A"] == f"{vals.mean():.3f} ± {vals.std(ddof=1):.3f}"
    means = [long[(long.method == "must") & (long.scenario == "complete") & (long.cohort == c)]["cindex"].mean()
             for c in "AB"]
    assert table.loc[1, "Overall"].startswith(f"{np.mean(means):.3f} ± ")
    assert table.loc[0, "†"] == "†" and table.loc[1, "†"] == ""


def test_table2_layout_shows_dashes_for_a_scenario_the_method_cannot_predict(files):
    """Paper Table 2: LD-CVAE's missing-pathology row is all `–`; methods without results get no rows; a method
    outside ``every_scenario`` keeps only its own scenarios."""
    long = fold_cindices(files)
    table = paper_table(long, ["A", "B"], ["abmil", "ldcvae", "must"], every_scenario={"abmil", "ldcvae", "must"})
    assert table["method"].tolist() == ["abmil"] * 3 + ["must"] * 3
    only_own = paper_table(long, ["A", "B"], ["abmil", "must"], every_scenario={"must"})
    assert only_own["method"].tolist() == ["abmil"] + ["must"] * 3
    dashes = table[(table.method == "abmil") & (table.P == "○")].iloc[0]
    assert (dashes["A"], dashes["B"], dashes["Overall"]) == ("–", "–", "–")


def test_ranks_put_the_stronger_method_first(files):
    ranked = add_ranks(fold_cindices(files))
    mg = ranked[(ranked.scenario == "missing_genomics")].groupby("method")["rank"].first()
    assert mg["must"] == 1 and mg["abmil"] == 2


def test_oracle_uses_truth_risk_on_test_patients():
    rng = np.random.default_rng(1)
    truth = pd.DataFrame({"patient_id": [f"P{i}" for i in range(30)]})
    for s in ("complete", "missing_genomics", "missing_pathology"):
        truth[f"risk_{s}"] = rng.normal(size=30)
    test = pd.DataFrame({"patient_id": truth.patient_id[:15], "time": rng.exponential(10, 15),
                         "event": rng.integers(0, 2, 15)})
    res = oracle_cindices("A", truth, {0: test})
    assert set(res.scenario) == {"complete", "missing_genomics", "missing_pathology"}
    got = res.loc[res.scenario == "complete", "cindex"].item()
    assert got == pytest.approx(c_index(test.time, test.event, truth.risk_complete[:15]))


def test_bad_predictions_are_named(tmp_path):
    bad = tmp_path / "p.tsv"
    good = {"patient_id": ["a"], "scenario": ["complete"], "risk": [-1.5], "time": [1.0], "event": [1],
            "train_median_risk": [-1.2], "survival_1": [0.9], "survival_2": [0.6]}
    for change, message in (({"scenario": ["both"]}, r"p\.tsv: unknown scenario"),
                            ({"survival_2": [0.95]}, "survival increases"),
                            ({"survival_1": [1.2]}, r"outside \[0, 1\]"),
                            ({"train_median_risk": [float("nan")]}, "train_median_risk"),
                            ({"survival_3": [0.5], "survival_2": [float("nan")]}, "outside"),
                            ):
        pd.DataFrame({**good, **change}).to_csv(bad, sep="\t", index=False)
        with pytest.raises(ValueError, match=message):
            read_predictions(bad)
    pd.DataFrame({k: v for k, v in good.items() if k != "survival_1"}).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match="survival_1 … survival_K"):
        read_predictions(bad)
    pd.DataFrame({k: v for k, v in good.items() if not k.startswith("survival")}).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match="survival_1 … survival_K"):
        read_predictions(bad)
    pd.DataFrame({k: v for k, v in good.items() if k != "train_median_risk"}).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match="lack column"):
        read_predictions(bad)
    pd.DataFrame(good).to_csv(bad, sep="\t", index=False)
    assert read_predictions(bad)["survival_2"].item() == 0.6


def test_tables_name_their_endpoint(files):
    from mustsurv.evaluate.report import layout

    long = fold_cindices(files)
    same = layout(long.assign(endpoint="DSS"), ["A", "B"], "table1")
    assert list(same.columns)[-1] == "endpoint" and (same["endpoint"] == "DSS").all()
    mixed = layout(long.assign(endpoint=np.where(long["cohort"] == "A", "DSS", "OS")), ["A", "B"], "table2")
    assert (mixed["endpoint"] == "A: DSS; B: OS").all()
    assert "endpoint" not in layout(long, ["A", "B"], "table1").columns
