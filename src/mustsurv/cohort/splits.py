"""Patient-level cross-validation splits and discrete survival time bins.

``results/cohorts/{cohort}/splits/fold{k}.json`` (k = 0..folds-1)::

    {"fold": k, "folds": 5, "source": "stratified" | "<splits_dir>/splits_k.csv", "seed": 0, "group_by": "none",
     "n_bins": 4, "bin_edges": [0.0, e1, e2, e3, Infinity], "validation_fraction": 0.2,
     "train": [patient ids, sorted], "validation": [patient ids, sorted], "test": [patient ids, sorted],
     "n_train": ..., "n_validation": ..., "n_test": ..., "events_train": ..., "events_validation": ...,
     "events_test": ...}

The outer training fold is ``train`` + ``validation``: the validation patients are a seeded subset of it,
stratified on event x time quantile, and are the only patients any choice (epoch, grid point, early
stop) may look at; ``train`` are the patients a model is fit on. The test patients influence nothing.

Bins: the inner edges e1..e_{K-1} are the K-quantiles of the outer training fold's uncensored times;
the outer edges are 0 and +inf (written as ``Infinity``, read by Python's json), so every time of any
patient falls in a bin without looking at test patients. The label of time ``t`` is the number of inner
edges <= t, i.e. bins are ``[e_i, e_{i+1})`` as in MCAT's ``pd.cut(right=False)``.

Internal splits: folds are stratified on event x time quantile (time quartiles, reduced until every
stratum has at least ``folds`` patients), shuffled with ``seed``; patients are sorted by id first, so
the assignment does not depend on the table's row order. With ``cv.group_by: site`` the folds are
stratified *group* folds over TCGA tissue source sites (:func:`mustsurv.barcodes.site_of`): every site's
patients share one test fold, and each fold's validation patients are whole sites of its outer training
fold (when it has two sites or more). External splits (MCAT ``splits_{k}.csv``,
columns ``,train,val``) are honoured as given; ``val`` is the test fold.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from mustsurv.barcodes import PatientIdError, patient_ids, site_of
from mustsurv.cohort.table import CohortInputError
from mustsurv.io import write_text_atomic
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

Split = tuple[list[str], list[str]]


def strata(time: np.ndarray, event: np.ndarray, folds: int, n_quantiles: int = 4) -> np.ndarray | None:
    """Label each patient with a stratum for stratified splitting.

    Args:
        time: (n,) survival times.
        event: (n,) 1 = death observed, 0 = censored.
        folds: number of folds; every stratum needs at least this many patients.
        n_quantiles: the largest number of time quantiles tried.

    Returns:
        (n,) labels ``event * q + time quantile`` with the largest q <= ``n_quantiles`` that leaves every
        stratum at least ``folds`` patients; None when even event alone cannot be stratified.
    """
    for q in range(n_quantiles, 0, -1):
        tq = pd.qcut(pd.Series(time).rank(method="first"), q, labels=False).to_numpy() if q > 1 else np.zeros(len(time))
        labels = event.astype(int) * q + tq.astype(int)
        if np.unique(labels, return_counts=True)[1].min() >= folds:
            return labels
    return None


def sites(patients: list[str]) -> list[str]:
    """The TCGA tissue source site of each patient (``cv.group_by: site``).

    Args:
        patients: TCGA patient ids.

    Returns:
        The two-character site codes, aligned with ``patients``.

    Raises:
        CohortInputError: a patient id is not a TCGA barcode.
    """
    try:
        return [site_of(p) for p in patients]
    except PatientIdError as err:
        raise CohortInputError(f"cv.group_by: site: {err}") from err


def make_splits(patients: list[str], time: np.ndarray, event: np.ndarray, folds: int, seed: int,
                groups: list[str] | None = None) -> list[Split]:
    """Make a seeded patient-level K-fold split stratified on event x time quantile.

    Patients are sorted by id first, so the assignment does not depend on the table's row order.

    Args:
        patients: patient ids, each once.
        time: (n,) survival times, aligned with ``patients``.
        event: (n,) 1 = death observed, 0 = censored.
        folds: number of folds K.
        seed: shuffling seed.
        groups: a group per patient (e.g. its tissue source site) kept inside one test fold; None = none.

    Returns:
        K ``(train, test)`` splits; every patient is in exactly one test fold.

    Raises:
        CohortInputError: duplicated patients, fewer than ``2 * folds`` patients, or fewer groups than folds.
    """
    if len(set(patients)) != len(patients):
        raise CohortInputError("duplicated patients in the cohort table; each patient must appear once.")
    if len(patients) < 2 * folds:
        raise CohortInputError(f"{len(patients)} patients are too few for {folds}-fold cross-validation; lower "
                               f"`cv.folds` or add patients.")
    order = np.argsort(np.asarray(patients))
    pats = np.asarray(patients)[order]
    t, e = np.asarray(time, dtype=float)[order], np.asarray(event, dtype=int)[order]
    labels = strata(t, e, folds)
    if groups is not None:
        return _group_splits(pats, np.asarray(groups)[order], labels if labels is not None else e, folds, seed)
    if labels is None:
        log.warning("too few events or censored patients to stratify %d folds; folds are random (seed %d)", folds, seed)
        splitter = KFold(folds, shuffle=True, random_state=seed).split(pats)
    else:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed).split(pats, labels)
    return [(sorted(pats[tr].tolist()), sorted(pats[te].tolist())) for tr, te in splitter]


def _group_splits(pats: np.ndarray, groups: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> list[Split]:
    """Stratified group K-fold over sorted patients; fewer groups than folds is an error saying so."""
    names = sorted(set(groups.tolist()))
    if len(names) < folds:
        raise CohortInputError(f"cv.group_by: site: the cohort has {len(names)} tissue source site(s) ({', '.join(names)}) "
                               f"for {folds} folds; every test fold needs a site of its own - lower `cv.folds` to "
                               f"{len(names)} or less, or set `cv.group_by: none`.")
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(pats, labels, groups)
    out = [(sorted(pats[tr].tolist()), sorted(pats[te].tolist())) for tr, te in splitter]
    log.info("folds grouped by site: %s", "; ".join(f"fold {k}: {sorted(set(groups[np.isin(pats, te)].tolist()))}"
                                                   for k, (_, te) in enumerate(out)))
    return out


def read_external_splits(splits_dir: str | Path, folds: int, patients: list[str], rule: str = "auto") -> list[Split]:
    """Read MCAT ``splits_{k}.csv`` (columns ``,train,val``) for k < ``folds``, restricted to ``patients``.

    Split patients absent from the cohort are dropped and counted; ``val`` is the test fold.

    Args:
        splits_dir: folder holding ``splits_0.csv`` .. ``splits_{folds-1}.csv``.
        folds: number of folds.
        patients: the cohort's patient ids.
        rule: the cohort's ``patient_ids`` rule, applied to the split files' ids.

    Returns:
        ``folds`` ``(train, test)`` splits.

    Raises:
        CohortInputError: a split file is missing or lacks the train/val columns, a patient is in both train
            and val of one fold, or in the val column of two folds.
    """
    splits_dir = Path(splits_dir)
    cohort = set(patients)
    out: list[Split] = []
    seen_test: dict[str, int] = {}
    for k in range(folds):
        path = splits_dir / f"splits_{k}.csv"
        if not path.is_file():
            raise CohortInputError(f"{path}: split file missing; `splits_dir` must hold splits_0.csv .. "
                                   f"splits_{folds - 1}.csv (cv.folds = {folds}).")
        df = pd.read_csv(path, dtype=str)
        if not {"train", "val"} <= set(df.columns):
            raise CohortInputError(f"{path}: expected columns train and val (MCAT splits_k.csv layout ',train,val').")
        try:
            train, test = ({*patient_ids([p.strip() for p in df[col].dropna() if p.strip()], rule, str(path))}
                           for col in ("train", "val"))
        except PatientIdError as err:
            raise CohortInputError(str(err)) from err
        both = train & test
        if both:
            raise CohortInputError(f"{path}: patient(s) {sorted(both)[:5]} are in both train and val.")
        for p in test:
            if p in seen_test:
                raise CohortInputError(f"{path}: patient {p} is also in the val column of splits_{seen_test[p]}.csv; "
                                       f"test folds must not overlap.")
            seen_test[p] = k
        foreign = (train | test) - cohort
        if foreign:
            log.info("%s: %d split patient(s) are not in the cohort table (no survival or no modality) and are "
                     "ignored", path, len(foreign))
        absent = cohort - train - test
        if absent:
            log.warning("%s: %d cohort patient(s) are in neither train nor val and are unused in fold %d (e.g. %s)",
                        path, len(absent), k, sorted(absent)[0])
        out.append((sorted(train & cohort), sorted(test & cohort)))
    never = cohort - set(seen_test)
    if never:
        log.warning("%s: %d cohort patient(s) are in no test fold (e.g. %s)", splits_dir, len(never), sorted(never)[0])
    return out


def validation_subset(patients: list[str], time: np.ndarray, event: np.ndarray, fraction: float,
                      seed: int, groups: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split an outer training fold into train and validation patients.

    round(``fraction`` · n) patients are drawn with ``seed``, stratified on event x time quantile where every
    stratum allows it (else on event, else at random), independently of the order of ``patients``. With
    ``groups`` whole groups are drawn instead (``fraction`` of the groups, at least one, at least one left for
    training); a fold with a single group falls back to the patient-level draw (logged).

    Args:
        patients: the outer training fold's patient ids.
        time: (n,) their survival times.
        event: (n,) their events.
        fraction: share held out as validation patients; 0 gives none.
        seed: seed of the draw.
        groups: a group per patient (its tissue source site), or None.

    Returns:
        (train, validation) patient ids, each sorted.

    Raises:
        CohortInputError: ``fraction`` outside [0, 1) or leaving fewer than two training patients.
    """
    if not 0 <= fraction < 1:
        raise CohortInputError(f"cv.validation_fraction must lie in [0, 1), got {fraction}")
    n_val = round(fraction * len(patients))
    if n_val == 0:
        return sorted(patients), []
    if len(patients) - n_val < 2:
        raise CohortInputError(f"{len(patients)} training patients are too few for a validation share of "
                               f"{fraction}; lower `cv.validation_fraction` or add patients.")
    order = np.argsort(np.asarray(patients))
    pats = np.asarray(patients)[order]
    if groups is not None:
        grp = np.asarray(groups)[order]
        n_groups = len(set(grp.tolist()))
        if n_groups >= 2:
            n_val_groups = min(max(1, round(fraction * n_groups)), n_groups - 1)
            _, val = next(GroupShuffleSplit(1, test_size=n_val_groups, random_state=seed).split(pats, groups=grp))
            if len(pats) - len(val) >= 2:
                chosen = set(pats[val].tolist())
                return sorted(p for p in pats.tolist() if p not in chosen), sorted(chosen)
        log.warning("the outer training fold has %d site(s); its validation patients are drawn per patient, not per "
                    "site", n_groups)
    labels = strata(np.asarray(time, dtype=float)[order], np.asarray(event, dtype=int)[order], 2)
    _, val = train_test_split(np.arange(len(pats)), test_size=n_val, random_state=seed, shuffle=True,
                              stratify=labels if labels is not None and n_val >= len(np.unique(labels)) else None)
    chosen = set(pats[val].tolist())
    return sorted(p for p in pats.tolist() if p not in chosen), sorted(chosen)


def bin_edges(time: np.ndarray, event: np.ndarray, n_bins: int) -> list[float]:
    """Compute the K+1 time-bin edges: 0, the K-quantile inner edges of the uncensored times, +inf.

    Args:
        time: (n,) survival times of the **training** patients only.
        event: (n,) 1 = death observed, 0 = censored.
        n_bins: number of bins K.

    Returns:
        K+1 edges, the first 0.0 and the last inf.

    Raises:
        CohortInputError: fewer than ``n_bins`` uncensored times are given.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=int)
    uncensored = time[event == 1]
    if len(uncensored) < n_bins:
        raise CohortInputError(f"only {len(uncensored)} uncensored training time(s) for {n_bins} bins; lower "
                               f"`cv.n_bins` or use a cohort with more events.")
    inner = np.quantile(uncensored, np.linspace(0, 1, n_bins + 1)[1:-1])
    if len(np.unique(inner)) < len(inner):
        log.warning("tied quantiles of uncensored times give empty bins: inner edges %s", inner.tolist())
    return [0.0, *[float(x) for x in inner], float("inf")]


def assign_bins(time: np.ndarray, edges: list[float]) -> np.ndarray:
    """Assign each time its bin: the number of inner edges <= t (bins ``[e_i, e_{i+1})``).

    Args:
        time: (n,) survival times.
        edges: K+1 bin edges from :func:`bin_edges`.

    Returns:
        (n,) int64 bin labels 0..K-1.
    """
    inner = np.asarray(edges[1:-1], dtype=float)
    return np.searchsorted(inner, np.asarray(time, dtype=float), side="right").astype(np.int64)


def fold_record(k: int, folds: int, split: Split, table: pd.DataFrame, n_bins: int, source: str,
                seed: int | None, validation_fraction: float, validation_seed: int, group_by: str = "none") -> dict:
    """Build a fold's JSON record (layout in the module docstring).

    Args:
        k: fold index.
        folds: number of folds.
        split: the fold's ``(outer training, test)`` patient ids.
        table: the cohort table (columns patient_id, time, event).
        n_bins: number of time bins; edges come from the outer training fold of ``split`` only.
        source: ``"stratified"`` or the external split file.
        seed: the split seed, None for external splits.
        validation_fraction: share of the outer training fold held out as validation patients
            (:func:`validation_subset`).
        validation_seed: seed of that draw.
        group_by: ``none`` or ``site`` (validation patients drawn as whole sites).

    Returns:
        The record.

    Raises:
        CohortInputError: the fold's test patients have no event, or its training patients too few for the bins.
    """
    outer, test = split
    idx = table.set_index(PATIENT_ID)
    tr = idx.loc[outer]
    where = f"fold {k} ({source})"
    if not idx.loc[list(test), "event"].sum():
        raise CohortInputError(f"{where}: none of its {len(test)} test patients has an event, so no C-index can be "
                               f"computed; use fewer folds (`cv.folds`) or other splits.")
    try:
        edges = bin_edges(tr["time"].to_numpy(), tr["event"].to_numpy(), n_bins)
    except CohortInputError as err:
        raise CohortInputError(f"{where}: {err}") from err
    train, validation = validation_subset(list(outer), tr["time"].to_numpy(), tr["event"].to_numpy(),
                                          validation_fraction, validation_seed,
                                          sites(list(outer)) if group_by == "site" else None)
    parts = {"train": train, "validation": validation, "test": list(test)}
    return {
        "fold": k, "folds": folds, "source": source, "seed": seed, "group_by": group_by, "n_bins": n_bins,
        "bin_edges": edges,
        "validation_fraction": validation_fraction, **parts,
        **{f"n_{name}": len(ids) for name, ids in parts.items()},
        **{f"events_{name}": int(idx.loc[ids, "event"].sum()) for name, ids in parts.items()},
    }


def write_fold(path: str | Path, record: dict) -> None:
    """Write one fold record as JSON atomically.

    Args:
        path: output ``fold{k}.json``.
        record: the record from :func:`fold_record`.
    """
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def read_fold(path: str | Path) -> dict:
    """Read a fold record (``bin_edges`` as floats, last = inf).

    Args:
        path: a ``fold{k}.json``.

    Returns:
        The record.

    Raises:
        CohortInputError: the file lacks ``train``, ``test`` or ``bin_edges``; rebuild it with the
            cohort_splits rule.
    """
    with open(path) as fh:
        record = json.load(fh)
    for key in ("train", "validation", "test", "bin_edges"):
        if key not in record:
            raise CohortInputError(f"{path}: fold file lacks {key!r}; rebuild it with the cohort_splits rule.")
    return record


def build_folds(table: pd.DataFrame, folds: int, seed: int, n_bins: int,
                validation_fraction: float, splits_dir: str | Path | None = None, rule: str = "auto",
                group_by: str = "none") -> list[dict]:
    """Build all fold records of a cohort table.

    Args:
        table: the cohort table.
        folds: number of folds.
        seed: seed of the internal stratified splits (and, + k, of fold k's validation draw).
        n_bins: number of time bins.
        validation_fraction: share of each outer training fold held out as validation patients.
        splits_dir: folder of external MCAT splits; None for internal stratified splits.
        rule: the cohort's ``patient_ids`` rule (applied to external split files).
        group_by: ``none``, or ``site`` to keep each TCGA tissue source site inside one test fold (internal
            splits only; external splits are honoured as given).

    Returns:
        One record per fold.

    Raises:
        CohortInputError: ``group_by: site`` with non-TCGA ids or fewer sites than folds.
    """
    patients = table[PATIENT_ID].tolist()
    if splits_dir is not None:
        if group_by != "none":
            log.warning("cv.group_by: %s is ignored: the folds come from %s as given", group_by, splits_dir)
            group_by = "none"
        splits = read_external_splits(splits_dir, folds, patients, rule)
        sources = [str(Path(splits_dir) / f"splits_{k}.csv") for k in range(folds)]
        seed_used = None
    else:
        groups = sites(patients) if group_by == "site" else None
        splits = make_splits(patients, table["time"].to_numpy(), table["event"].to_numpy(), folds, seed, groups)
        sources, seed_used = ["stratified"] * folds, seed
    records = [fold_record(k, folds, s, table, n_bins, sources[k], seed_used, validation_fraction, seed + k,
                           group_by) for k, s in enumerate(splits)]
    for r in records:
        log.info("fold %d: %d train (%d events) / %d validation (%d events) / %d test (%d events); bin edges %s",
                 r["fold"], r["n_train"], r["events_train"], r["n_validation"], r["events_validation"], r["n_test"],
                 r["events_test"], [round(e, 2) for e in r["bin_edges"]])
    return records
