"""Scoring new patients with a bundle: inputs given like a cohort, any modality subset per patient.

A new cohort is read into :class:`NewPatients`: per patient its feature files (``.h5`` with ``features``
(N, D), checked against the bundle's encoder and dimension) and its raw omics, aligned by feature name to
the bundle's gene families (a gene the new tables lack is NaN and takes the training mean; a family with
none of its features is an error). :func:`score` predicts each patient in the scenario its modalities allow
(or in one given scenario, the other modality masked) and returns one row per patient (:data:`COLUMNS` plus
``survival_at_<edge>`` per finite bin edge). For a missing modality MUST's row also carries
``risk_sd``, the standard deviation of the risk over the DDIM samples of the missing component.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

from mustsurv.deploy.bundle import Bundle, Member
from mustsurv.evaluate.metrics import survival_at
from mustsurv.models.batch import PatientItem, collate
from mustsurv.models.must import MUST, patient_generator
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID, SCENARIOS

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (PATIENT_ID, "scenario", "modalities", "risk", "risk_group", "risk_tertile", "risk_sd",
                            "training_patient")
"""The columns of a prediction, before the ``survival_at_<edge>`` columns (edge in months, 2 decimals)."""
TERTILES = ("low", "intermediate", "high")


class PredictInputError(ValueError):
    """New patients that cannot be scored as given; the message names the file or the patients and the fix."""


@dataclass
class NewPatients:
    """Patients to score.

    Attributes:
        ids: every patient, sorted.
        bags: patient -> its feature files (patients with pathology).
        omics: patient -> per family its raw (d_k,) values in the bundle's feature order, NaN where not measured
            (patients with genomics).
        time: patient -> time (months), when outcomes are known (evaluation only).
        event: patient -> event, when outcomes are known.
    """

    ids: list[str]
    bags: dict[str, list[str]] = field(default_factory=dict)
    omics: dict[str, list[np.ndarray]] = field(default_factory=dict)
    time: dict[str, float] = field(default_factory=dict)
    event: dict[str, int] = field(default_factory=dict)

    def modalities(self, patient: str) -> tuple[str, ...]:
        """The modalities a patient has.

        Args:
            patient: the id.

        Returns:
            A subset of (``pathology``, ``genomics``), in that order.
        """
        return tuple(m for m, has in ((PATHOLOGY, patient in self.bags), (GENOMICS, patient in self.omics)) if has)


# --- reading a new cohort --------------------------------------------------------------------------

def align_omics(frame: pd.DataFrame, bundle: Bundle, source: str) -> dict[str, list[np.ndarray]]:
    """Align a patient x feature frame to the bundle's gene families by feature name.

    Args:
        frame: patient x ``{GENE}_{type}`` raw values (RNA already transformed as in training).
        bundle: the bundle.
        source: the input's name, for messages.

    Returns:
        patient -> per family its (d_k,) float64 values, NaN for a feature the frame lacks; patients without a
        single measured bundle feature are left out.

    Raises:
        PredictInputError: the bundle has no genomics, or the frame lacks every feature of a family.
    """
    genomics = bundle.data["genomics"]
    if genomics is None:
        raise PredictInputError(f"{source}: the bundle {bundle.path} was trained without genomics; leave the omics "
                                f"out")
    parts, absent_total, total = [], 0, 0
    for name, feats in zip(genomics["family_names"], genomics["features"]):
        present = [f for f in feats if f in frame.columns]
        if not present:
            raise PredictInputError(f"{source}: none of the {len(feats)} features of gene family {name!r} (e.g. "
                                    f"{feats[0]}) is in the new omics; give the data types the bundle was trained on "
                                    f"(rna, cnv, maf) with the same gene symbols")
        absent_total += len(feats) - len(present)
        total += len(feats)
        parts.append(frame.reindex(columns=feats).to_numpy(dtype=np.float64))
    if absent_total:
        log.warning("%s: %d of the bundle's %d omics features are missing; filled with the training mean",
                    source, absent_total, total)
    measured = np.any([np.isfinite(p).any(axis=1) for p in parts], axis=0)
    if not measured.all():
        log.warning("%s: %d patient(s) have no measured bundle feature and get no genomics", source,
                    int((~measured).sum()))
    return {str(p): [v[i] for v in parts] for i, p in enumerate(frame.index) if measured[i]}


def tokens_frame(tokens_h5: str | Path) -> pd.DataFrame:
    """A ``tokens.h5`` as one patient x feature frame.

    Args:
        tokens_h5: the tokens file.

    Returns:
        Patient x feature raw values.
    """
    from mustsurv.omics.tokens import read_tokens

    tokens = read_tokens(tokens_h5)
    frames = [pd.DataFrame(v, index=tokens.patients, columns=f) for v, f in zip(tokens.values, tokens.features)]
    out = pd.concat(frames, axis=1)
    return out.loc[:, ~out.columns.duplicated()]


def tables_frame(bundle: Bundle, rna: str | Path | None = None, cnv: str | Path | None = None,
                 maf: Sequence[str | Path] | None = None, mcat_csv: str | Path | None = None) -> pd.DataFrame:
    """Read omics tables as in training (the bundle's RNA transform) into one patient x feature frame.

    Args:
        bundle: the bundle.
        rna: RNA gene x sample matrix.
        cnv: GISTIC CNV matrix.
        maf: MAF files.
        mcat_csv: an MCAT all_clean CSV instead of the tables.

    Returns:
        Patient x ``{GENE}_{type}`` values.
    """
    from mustsurv.omics.matrices import read_cnv, read_maf, read_rna, rna_transform
    from mustsurv.omics.survival import read_mcat_csv
    from mustsurv.omics.tokens import assemble_features

    transform = bundle.data["genomics"]["rna_transform"] if bundle.data["genomics"] else "none"
    if mcat_csv is not None:
        features = read_mcat_csv(mcat_csv).features
        rna_cols = [c for c in features.columns if c.endswith("_rnaseq")]
        if rna_cols:
            features[rna_cols], _ = rna_transform(features[rna_cols], transform, mcat_csv)
        return features
    rna_frame = read_rna(rna, transform)[0] if rna is not None else None
    return assemble_features(rna=rna_frame, cnv=read_cnv(cnv) if cnv is not None else None,
                             mut=read_maf(list(maf)) if maf else None)


def check_features(paths: Sequence[str], bundle: Bundle) -> None:
    """Check feature files against the bundle's encoder (name when recorded, dimension always).

    Args:
        paths: ``.h5`` files with a ``features`` (N, D) dataset.
        bundle: the bundle.

    Raises:
        PredictInputError: the bundle has no pathology, a file is unreadable, or its encoder or D differs.
    """
    encoder = bundle.data["encoder"]
    if encoder is None:
        raise PredictInputError(f"{paths[0]}: the bundle {bundle.path} was trained without pathology; leave the "
                                f"slide features out")
    for path in paths:
        try:
            with h5py.File(path, "r") as h5:
                shape = h5["features"].shape
                name = h5.attrs.get("encoder", h5["features"].attrs.get("encoder"))
        except (OSError, KeyError) as exc:
            raise PredictInputError(f"{path}: not a readable features file with a `features` (N, D) dataset "
                                    f"({exc})") from exc
        if name is not None and str(name) != encoder["name"]:
            raise PredictInputError(f"{path}: features of encoder {name!r}, but the bundle {bundle.path} was trained on "
                                    f"{encoder['name']!r}; embed the slides with {encoder['name']} "
                                    f"(target_mpp {encoder['target_mpp']}, patch_size {encoder['patch_size']})")
        if len(shape) != 2 or shape[1] != encoder["dim"]:
            raise PredictInputError(f"{path}: features of shape {tuple(shape)}, but the bundle {bundle.path} expects "
                                    f"(N, {encoder['dim']}) from {encoder['name']}; embed the slides with that encoder")


def summary_bags(summary: pd.DataFrame) -> dict[str, list[str]]:
    """Patient -> usable feature files, from a slide summary (:func:`mustsurv.slides.summary.read_summary`).

    Args:
        summary: the summary with ``usable``.

    Returns:
        The mapping (patients with at least one usable slide).
    """
    out: dict[str, list[str]] = {}
    for _, row in summary.loc[summary["usable"]].sort_values("slide_id").iterrows():
        out.setdefault(str(row[PATIENT_ID]), []).append(str(row["features"]))
    return out


def read_new_cohort(bundle: Bundle, features_dir: str | Path | None = None, slide_sheet: str | Path | None = None,
                    rna: str | Path | None = None, cnv: str | Path | None = None,
                    maf: Sequence[str | Path] | None = None, mcat_csv: str | Path | None = None,
                    tokens: str | Path | None = None) -> NewPatients:
    """Read a new cohort given like any cohort: precomputed features and/or omics.

    Args:
        bundle: the bundle.
        features_dir: folder of ``<slide_id>.h5`` features.
        slide_sheet: slide sheet mapping slide ids to patients (else the first 12 characters of the slide id).
        rna: RNA matrix.
        cnv: CNV matrix.
        maf: MAF files.
        mcat_csv: MCAT all_clean CSV.
        tokens: a workflow ``tokens.h5`` instead of the tables.

    Returns:
        The patients.

    Raises:
        PredictInputError: no input given, no patient found, or an input does not fit the bundle.
    """
    from mustsurv.slides.summary import build_summary, read_summary

    bags: dict[str, list[str]] = {}
    if features_dir is not None:
        from mustsurv.study.design import precomputed_features

        files = precomputed_features(features_dir)
        if not files:
            raise PredictInputError(f"{features_dir}: no .h5 features file; point --features-dir at the folder of "
                                    f"<slide_id>.h5 files")
        patients = None
        if slide_sheet is not None:
            from mustsurv.cohort.slides import read_sheet

            sheet = read_sheet(slide_sheet)
            patients = dict(zip(sheet["slide_id"], sheet[PATIENT_ID]))
        from tempfile import TemporaryDirectory

        with TemporaryDirectory() as tmp:  # read_summary marks the usable slides
            path = Path(tmp) / "summary.tsv"
            build_summary(files, patients).to_csv(path, sep="\t", index=False)
            bags = summary_bags(read_summary(path))
        check_features([p for ps in bags.values() for p in ps], bundle)
    omics: dict[str, list[np.ndarray]] = {}
    given = [x for x in (rna, cnv, *(maf or []), mcat_csv, tokens) if x is not None]
    if tokens is not None:
        omics = align_omics(tokens_frame(tokens), bundle, str(tokens))
    elif given:
        omics = align_omics(tables_frame(bundle, rna, cnv, maf, mcat_csv), bundle, ", ".join(map(str, given)))
    if features_dir is None and not given:
        raise PredictInputError("no input: give --features-dir and/or omics (--rna, --cnv, --maf, --mcat-csv, "
                                "--tokens)")
    ids = sorted(set(bags) | set(omics))
    if not ids:
        raise PredictInputError(f"empty cohort: no patient has a usable slide or measured omics in "
                                f"{', '.join(map(str, [features_dir, *given]))}")
    return NewPatients(ids=ids, bags=bags, omics=omics)


def cohort_patients(bundle: Bundle, cohort_tsv: str | Path, tokens_h5: str | Path | None,
                    summary_tsv: str | Path | None) -> NewPatients:
    """A workflow cohort's patients with outcomes (cohort table, tokens, slide summary).

    Patients of the table with neither modality are left out (logged).

    Args:
        bundle: the bundle.
        cohort_tsv: the cohort table.
        tokens_h5: its tokens, or None.
        summary_tsv: its slide summary, or None.

    Returns:
        The patients, with ``time`` and ``event``.
    """
    from mustsurv.cohort.table import HAS_GENOMICS, HAS_PATHOLOGY, read_cohort_table
    from mustsurv.slides.summary import read_summary

    table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
    bags, omics = {}, {}
    if summary_tsv is not None and bundle.data["encoder"] is not None:
        bags = {p: v for p, v in summary_bags(read_summary(summary_tsv, report=False)).items()
                if p in table.index and table.at[p, HAS_PATHOLOGY]}
        check_features([p for ps in bags.values() for p in ps], bundle)
    if tokens_h5 is not None and bundle.data["genomics"] is not None:
        omics = {p: v for p, v in align_omics(tokens_frame(tokens_h5), bundle, str(tokens_h5)).items()
                 if p in table.index and table.at[p, HAS_GENOMICS]}
    ids = sorted(set(bags) | set(omics))
    if len(ids) < len(table):
        log.warning("%s: %d of %d patient(s) have no modality the bundle reads and are not scored", cohort_tsv,
                    len(table) - len(ids), len(table))
    return NewPatients(ids=ids, bags=bags, omics=omics, time={p: float(table.at[p, "time"]) for p in ids},
                       event={p: int(table.at[p, "event"]) for p in ids})


# --- scoring ---------------------------------------------------------------------------------------

def scenario_for(modalities: Sequence[str], scenarios: Sequence[str]) -> str | None:
    """The scenario a patient is scored in: complete when it has both modalities and the method predicts it, else
    the scenario of the one modality the method reads.

    Args:
        modalities: the patient's modalities.
        scenarios: the method's scenarios.

    Returns:
        The scenario, or None when the method reads none of the patient's modalities.
    """
    options = []
    if PATHOLOGY in modalities and GENOMICS in modalities:
        options.append("complete")
    if PATHOLOGY in modalities:
        options.append("missing_genomics")
    if GENOMICS in modalities:
        options.append("missing_pathology")
    return next((s for s in options if s in scenarios), None)


def _items(patients: NewPatients, ids: Sequence[str], scenario: str, member: Member,
           bags: dict[str, torch.Tensor]) -> list[PatientItem]:
    """The patients of ``ids`` as model items in ``scenario`` (the modality it drops masked), scaled by the member."""
    keep_p, keep_g = scenario != "missing_pathology", scenario != "missing_genomics"
    omics = {}
    if keep_g:
        with_g = [p for p in ids if p in patients.omics]
        if with_g:
            raw = [np.stack([patients.omics[p][k] for p in with_g]) for k in range(len(patients.omics[with_g[0]]))]
            scaled = member.scaler.transform(raw)
            omics = {p: [torch.from_numpy(s[i].copy()) for s in scaled] for i, p in enumerate(with_g)}
    return [{"patient_id": p, "pathology": bags.get(p) if keep_p else None, "genomics": omics.get(p),
             "time": patients.time.get(p, 0.0), "event": patients.event.get(p, 0), "bin": 0} for p in ids]


@torch.no_grad()
def missing_survival(model: MUST, batch: Any, scenario: str, n_samples: int, steps: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MUST in a missing scenario: the survival from the mean generated component, and the risk's spread over
    the samples.

    The survival equals :meth:`MUST.predict_survival` (same noise: :func:`patient_generator`); each of the S
    samples also goes through the head alone, and the standard deviation of their risks is returned.

    Args:
        model: the MUST model.
        batch: B patients having the available modality.
        scenario: ``missing_genomics`` or ``missing_pathology``.
        n_samples: S DDIM samples.
        steps: DDIM steps.
        seed: sampling seed.

    Returns:
        (B, K) survival and (B,) standard deviation of the risk over the S samples.
    """
    if scenario == "missing_genomics":
        g, u = model.encode_pathology([p for p in batch.pathology if p is not None])[:2]
    else:
        g, u = model.encode_genomics(batch.genomics or [])[:2]
    u_hat = model.project_specific(u)
    missing = GENOMICS if scenario == "missing_genomics" else PATHOLOGY
    return generate_and_score(model, u_hat, g - u_hat, missing, batch.patient_ids, n_samples, steps, seed)


@torch.no_grad()
def generate_and_score(model: MUST, u_hat: torch.Tensor, c_tilde: torch.Tensor, missing: str,
                       patient_ids: Sequence[str], n_samples: int, steps: int,
                       seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The generative part of a missing-modality prediction: c̃ → S DDIM samples of the missing û → head → survival.

    All B x S samples are denoised in one batch (the condition's keys and values computed once per patient);
    the survival comes from the mean sample, the spread from each sample through the head.

    Args:
        model: the MUST model.
        u_hat: (B, D) the available modality's specific component û.
        c_tilde: (B, D) the surrogate shared component c̃ = g − û.
        missing: the missing modality (``pathology`` or ``genomics``).
        patient_ids: B ids (seed each patient's noise).
        n_samples: S.
        steps: DDIM steps.
        seed: sampling seed.

    Returns:
        (B, K) survival and (B,) standard deviation of the risk over the S samples.
    """
    from mustsurv.survival import survival_from_hazards

    ldm, cls = model._ldm(missing)
    noise = torch.stack([torch.randn((n_samples, model.dim), generator=patient_generator(seed, pid),
                                     dtype=c_tilde.dtype) for pid in patient_ids]).to(c_tilde.device)
    samples = ldm.sample(c_tilde, cls, noise=noise, steps=steps)  # (B, S, D)
    b, s, d = samples.shape
    # (I - P) is linear: the mean of the projected samples is the projection of their mean (sample_specific)
    projected = model.project_specific(samples.reshape(b * s, d)).reshape(b, s, d)
    filled = torch.cat([projected.mean(dim=1, keepdim=True), projected], dim=1).reshape(b * (s + 1), d)
    avail, cond = u_hat.repeat_interleave(s + 1, dim=0), c_tilde.repeat_interleave(s + 1, dim=0)
    logits = (model.head_logits(avail, cond, filled) if missing == GENOMICS
              else model.head_logits(filled, cond, avail))
    surv = survival_from_hazards(torch.sigmoid(logits)).reshape(b, s + 1, -1)
    return surv[:, 0], (-surv[:, 1:].sum(dim=2)).std(dim=1, unbiased=False)


def _member_outputs(member: Member, items: list[PatientItem], scenario: str, inference: dict[str, Any],
                    edges: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One member's survival at the bundle's edges (N, K), risk (N,) and risk spread (N,) of ``items``."""
    model = member.model
    device = next(model.parameters()).device
    surv, sd = [], []
    for start in range(0, len(items), inference["batch_size"]):
        batch = collate(items[start:start + inference["batch_size"]]).to(device)
        if isinstance(model, MUST) and scenario != "complete":
            s, spread = missing_survival(model, batch, scenario, inference["n_samples"], inference["ddim_steps"],
                                         inference["seed"])
        else:
            s = model.predict_survival(batch, scenario, n_samples=inference["n_samples"],
                                       steps=inference["ddim_steps"], seed=inference["seed"])
            spread = torch.full((len(batch),), float("nan"))
        surv.append(s.double().cpu().numpy())
        sd.append(spread.double().cpu().numpy())
    s, spread = np.concatenate(surv), np.concatenate(sd)
    risk = -s.sum(axis=1)
    if member.bin_edges != edges:  # an ensemble member: its step function at the bundle's edges
        s = np.hstack([survival_at(s, member.bin_edges, edges[1:-1]), s[:, -1:]])
    return s, risk, spread


def _survival_columns(edges: list[float]) -> list[str]:
    """``survival_at_<edge>`` for the finite inner edges (months, 2 decimals)."""
    return [f"survival_at_{e:.2f}" for e in edges[1:-1]]


def score(bundle: Bundle, patients: NewPatients, scenario: str | None = None,
          allow_training_patients: bool = False) -> pd.DataFrame:
    """Score every patient with the bundle.

    Args:
        bundle: the bundle.
        patients: the patients.
        scenario: None: each patient in the scenario its modalities allow (:func:`scenario_for`); a scenario:
            only the patients that allow it, the modality it drops masked.
        allow_training_patients: score patients whose id hash is among the bundle's training patients (their
            rows say ``training_patient``); else they are an error.

    Returns:
        One row per scored patient: :data:`COLUMNS`, then ``survival_at_<edge>`` (the survival after each finite
        bin edge), then ``survival_1 … survival_K`` (the predictions-file contract).

    Raises:
        PredictInputError: a patient has neither modality, the method reads none of a patient's modalities, or a
            patient is a training patient (without ``allow_training_patients``).
    """
    if not patients.ids:
        raise PredictInputError("empty cohort: no patient to score")
    empty = [p for p in patients.ids if not patients.modalities(p)]
    if empty:
        raise PredictInputError(f"{len(empty)} patient(s) have neither pathology nor genomics (e.g. {empty[0]}); "
                                f"give their slide features or omics, or leave them out")
    training = [p for p in patients.ids if bundle.is_training_patient(p)]
    if training and not allow_training_patients:
        raise PredictInputError(f"{len(training)} patient(s) were training patients of {bundle.path} (e.g. "
                                f"{training[0]}): their risk is not a prediction; leave them out or pass "
                                f"--allow-training-patients")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
    by_scenario: dict[str, list[str]] = {}
    for p in patients.ids:
        mods = patients.modalities(p)
        s = scenario_for(mods, bundle.scenarios) if scenario is None else scenario
        if scenario is None and s is None:
            raise PredictInputError(f"patient {p} has only {'+'.join(mods)}, which {bundle.method} does not read "
                                    f"(it predicts {', '.join(bundle.scenarios)})")
        if scenario is not None and scenario_for(mods, [scenario]) is None:
            continue
        by_scenario.setdefault(s, []).append(p)
    edges = [float(e) for e in bundle.data["bin_edges"]]
    from mustsurv.cohort.store import FeatureStore

    store = FeatureStore()
    frames = []
    for s, ids in by_scenario.items():
        bags = {p: store.get(p, patients.bags[p]) for p in ids if p in patients.bags}
        outs = [_member_outputs(m, _items(patients, ids, s, m, bags), s, bundle.data["inference"], edges)
                for m in bundle.members]
        surv = np.mean([o[0] for o in outs], axis=0)
        risk = np.mean([o[1] for o in outs], axis=0)
        spread = np.mean([o[2] for o in outs], axis=0)
        cut = bundle.data["cutoffs"].get(s)
        used = {"complete": f"{PATHOLOGY}+{GENOMICS}", "missing_genomics": PATHOLOGY, "missing_pathology": GENOMICS}[s]
        frame = pd.DataFrame({
            PATIENT_ID: ids, "scenario": s, "modalities": used, "risk": risk,
            "risk_group": (np.where(risk > cut["median"], "high", "low") if cut else "n/a"),
            "risk_tertile": ([TERTILES[int(np.searchsorted(cut["tertiles"], r, side="right"))] for r in risk]
                             if cut else "n/a"),
            "risk_sd": spread, "training_patient": [p in training for p in ids]})
        frame[_survival_columns(edges)] = surv[:, :-1]
        frame[[f"survival_{k}" for k in range(1, surv.shape[1] + 1)]] = surv
        frames.append(frame)
    if not frames:
        raise PredictInputError(f"no patient allows the scenario {scenario}")
    return pd.concat(frames, ignore_index=True).sort_values([PATIENT_ID, "scenario"], ignore_index=True)


def cutoffs(pred: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Risk cut-offs per scenario from the training patients' predictions.

    Args:
        pred: :func:`score`'s rows of the training patients.

    Returns:
        scenario -> ``median`` and ``tertiles`` (two floats) of the risk.
    """
    out = {}
    for s, rows in pred.groupby("scenario"):
        r = rows["risk"].to_numpy(dtype=float)
        out[str(s)] = {"median": float(np.median(r)), "tertiles": [float(q) for q in np.quantile(r, [1 / 3, 2 / 3])]}
    return out


def write_scores(pred: pd.DataFrame, path: str | Path) -> None:
    """Write :func:`score`'s rows as TSV atomically (without the predictions-file ``survival_k`` columns).

    Args:
        pred: the rows.
        path: the TSV.
    """
    from mustsurv.io import atomic_path

    columns = [c for c in pred.columns if not (c.startswith("survival_") and not c.startswith("survival_at_"))]
    with atomic_path(path) as tmp:
        pred.loc[:, columns].to_csv(tmp, sep="\t", index=False, float_format="%.6g")
