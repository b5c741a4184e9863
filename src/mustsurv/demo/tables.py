"""TCGA-style tables of a demo cohort, over real gene symbols.

Formats written (as users download them):
- ``clinical.tsv``: cBioPortal ``data_clinical_patient.txt`` (four ``#`` header lines, ``PATIENT_ID``,
  ``OS_MONTHS``, ``OS_STATUS`` = ``1:DECEASED`` / ``0:LIVING``);
- ``rna.tsv``: cBioPortal ``data_mrna_seq_v2_rsem.txt`` (``Hugo_Symbol``, ``Entrez_Gene_Id``, one
  column of RSEM values per sample barcode ``TCGA-XX-XXXX-01``);
- ``cnv.tsv``: GISTIC thresholded gene x sample matrix (``Hugo_Symbol``, ``Entrez_Gene_Id``, -2..2);
- ``mutations.maf``: MAF with silent and non-silent calls;
- ``gene_families.csv``: six families, MCAT ``signatures.csv`` layout (ragged columns);
- ``slides.tsv``: slide sheet (``slide_id``, ``patient_id``, ``path``, ``mpp``);
- ``truth.tsv``: per patient (``patient_id``) the latent factors, their cross-modal traces, the true
  log-hazard and its expectation given each single modality (read by no model; the evaluation uses it
  for oracle C-indices).

Planted omics signal: each gene's log-expression loads on ``shared``, ``genomics`` and the trace of
``pathology`` (``pathology_in_omics``) with sparse random loadings; CNV calls threshold a latent value
that carries ``genomics``; mutation probability of a few driver genes rises with ``genomics``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.demo.genes import FAMILIES, UNASSIGNED, all_family_genes
from mustsurv.demo.plan import StudyPlan, make_plan
from mustsurv.io import atomic_path
from mustsurv.study.layout import DEMO_TABLES
from mustsurv.study.vocabulary import PATIENT_ID

NON_SILENT = ["Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del", "Frame_Shift_Ins", "Splice_Site"]
SILENT = ["Silent", "3'UTR", "Intron"]


def _sample(pid: str) -> str:
    """The sample barcode ``<patient>-01`` of a patient."""
    return f"{pid}-01"


def _write_tsv(df: pd.DataFrame, path: Path, header_lines: list[str] | None = None) -> None:
    """Write ``df`` tab-separated and atomically, after the optional ``header_lines``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            for line in header_lines or []:
                fh.write(line + "\n")
            df.to_csv(fh, sep="\t", index=False, lineterminator="\n")


def _genomics_patients(plan: StudyPlan) -> list:
    """The patients of the plan that have omics."""
    return [p for p in plan.patients if p.has_genomics]


def write_clinical(plan: StudyPlan, path: Path) -> None:
    """Write the clinical table (cBioPortal ``data_clinical_patient.txt`` layout, four ``#`` header lines).

    Args:
        plan: the cohort's plan.
        path: the ``clinical.tsv`` to write.
    """
    df = pd.DataFrame(
        {
            "PATIENT_ID": [p.patient_id for p in plan.patients],
            "OS_MONTHS": [f"{p.time_months:.2f}" for p in plan.patients],
            "OS_STATUS": ["1:DECEASED" if p.event else "0:LIVING" for p in plan.patients],
        }
    )
    header = [
        "#Patient Identifier\tOverall Survival (Months)\tOverall Survival Status",
        "#Identifier to uniquely specify a patient.\tOverall survival in months.\tOverall patient survival status.",
        "#STRING\tNUMBER\tSTRING",
        "#1\t1\t1",
    ]
    _write_tsv(df, path, header)


def _gene_matrix(plan: StudyPlan, values: np.ndarray, genes: list[str]) -> pd.DataFrame:
    """Gene x sample table (``Hugo_Symbol``, ``Entrez_Gene_Id``, samples) of ``values`` (patients, genes)."""
    samples = [_sample(p.patient_id) for p in _genomics_patients(plan)]
    df = pd.DataFrame(values.T, columns=samples)
    df.insert(0, "Entrez_Gene_Id", "")
    df.insert(0, "Hugo_Symbol", genes)
    return df


def write_rna_cnv(plan: StudyPlan, rna_path: Path, cnv_path: Path) -> None:
    """Write the RNA (RSEM) and the CNV (GISTIC -2..2) matrices of the patients with omics.

    Args:
        plan: the cohort's plan.
        rna_path: the ``rna.tsv`` to write.
        cnv_path: the ``cnv.tsv`` to write.
    """
    genes = all_family_genes() + UNASSIGNED
    pats = _genomics_patients(plan)
    z = np.array([[p.shared, p.genomics] for p in pats])  # (n, 2)
    n_genes = len(genes)
    # the generating model (loadings) comes from the seed of the cohort whose model this one shares; its
    # stream is replayed with that cohort's own noise draws, so the loadings are identical
    model = plan.model or plan.settings
    n_model = len(pats) if plan.model is None else len(_genomics_patients(make_plan("model", model)))
    rng = np.random.default_rng([model.seed, 7])
    load = rng.normal(0, 1.0, size=(2, n_genes)) * (rng.uniform(size=(2, n_genes)) < 0.3)
    base = rng.uniform(3.0, 11.0, size=n_genes)
    # the trace of the pathology factor: its own sparse loadings from its own stream
    trng = np.random.default_rng([model.seed, 7, 1])
    tload = trng.normal(0, 1.0, size=n_genes) * (trng.uniform(size=n_genes) < 0.3)
    noise = rng.normal(0, 0.6, size=(n_model, n_genes))
    cload = rng.normal(0, 0.8, size=n_genes) * (rng.uniform(size=n_genes) < 0.4)
    cnoise = rng.normal(0, 0.7, size=(n_model, n_genes))
    if plan.model is not None:  # new patients: noise of their own
        own = np.random.default_rng([plan.settings.seed, 7, 2])
        noise, cnoise = own.normal(0, 0.6, size=(len(pats), n_genes)), own.normal(0, 0.7, size=(len(pats), n_genes))
    trace = np.array([p.pathology_in_omics for p in pats])
    log_expr = base + z @ load + trace[:, None] * tload[None, :] + noise
    rsem = np.round(np.exp2(np.clip(log_expr, 0, None)) - 1.0, 4)
    _write_tsv(_gene_matrix(plan, rsem, genes), rna_path)

    latent = z[:, 1:2] * cload[None, :] + cnoise
    calls = np.digitize(latent, [-1.6, -0.8, 0.8, 1.6]) - 2
    _write_tsv(_gene_matrix(plan, calls.astype(int), genes), cnv_path)


def write_maf(plan: StudyPlan, path: Path) -> None:
    """Write the mutation calls (MAF, silent and non-silent) of the patients with omics.

    Args:
        plan: the cohort's plan.
        path: the ``mutations.maf`` to write.
    """
    rng = np.random.default_rng([plan.settings.seed, 11])
    genes = all_family_genes()
    drivers = ["TP53", "KRAS", "PIK3CA", "FGFR3", "KDM6A", "ARID1A", "RB1", "EGFR"]
    rows = []
    for p in _genomics_patients(plan):
        hit = set(rng.choice(genes, size=rng.poisson(6), replace=False).tolist())
        prob = 1 / (1 + np.exp(-(1.4 * p.genomics - 0.8)))
        hit |= {g for g in drivers if rng.uniform() < prob}
        for g in sorted(hit):
            rows.append((g, _sample(p.patient_id) + "A-11D-A00X-08", str(rng.choice(NON_SILENT))))
        for g in rng.choice(genes, size=rng.poisson(3), replace=False):
            rows.append((str(g), _sample(p.patient_id) + "A-11D-A00X-08", str(rng.choice(SILENT))))
    df = pd.DataFrame(rows, columns=["Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification"])
    df.insert(1, "Entrez_Gene_Id", 0)
    df.insert(2, "Center", "demo")
    df.insert(3, "NCBI_Build", "GRCh38")
    _write_tsv(df, path, ["#version 2.4"])


def write_families(path: Path) -> None:
    """Write the six gene families in the MCAT ``signatures.csv`` layout (ragged columns).

    Args:
        path: the ``gene_families.csv`` to write.
    """
    cols = {k: pd.Series(v) for k, v in FAMILIES.items()}
    with atomic_path(path) as tmp:
        pd.DataFrame(cols).to_csv(tmp, index=False, lineterminator="\n")


def write_slide_sheet(plan: StudyPlan, path: Path, slide_dir: str = "slides") -> None:
    """Write the slide sheet (``slide_id``, ``patient_id``, ``path``, ``mpp``).

    Args:
        plan: the cohort's plan.
        path: the sheet to write.
        slide_dir: folder of the slides, relative to the sheet's own folder (the ``path`` entries are
            relative to it).
    """
    df = pd.DataFrame(
        [(s.slide_id, s.patient_id, f"{slide_dir}/{s.slide_id}.svs", s.mpp) for s in plan.slides],
        columns=["slide_id", PATIENT_ID, "path", "mpp"],
    )
    _write_tsv(df, path)


def write_truth(plan: StudyPlan, path: Path) -> None:
    """Write the truth table (read by no model; the evaluation's oracle C-indices use it).

    Per patient: the latent factors, their traces, the true log-hazard and its expectation given each single
    modality.

    Args:
        plan: the cohort's plan.
        path: the ``truth.tsv`` to write.
    """
    st = plan.settings
    rho = st.cross_modal
    df = pd.DataFrame(
        {
            PATIENT_ID: [p.patient_id for p in plan.patients],
            "shared": [p.shared for p in plan.patients],
            "pathology": [p.pathology for p in plan.patients],
            "genomics": [p.genomics for p in plan.patients],
            "genomics_in_tissue": [p.genomics_in_tissue for p in plan.patients],
            "pathology_in_omics": [p.pathology_in_omics for p in plan.patients],
            "risk_complete": [p.eta for p in plan.patients],
            # E[eta | one modality]: the other modality's specific factor enters through its trace
            "risk_missing_genomics": [st.effect_shared * p.shared + st.effect_pathology * p.pathology
                                      + st.effect_genomics * rho * p.genomics_in_tissue for p in plan.patients],
            "risk_missing_pathology": [st.effect_shared * p.shared + st.effect_genomics * p.genomics
                                       + st.effect_pathology * rho * p.pathology_in_omics for p in plan.patients],
        }
    )
    _write_tsv(df.round(6), path)


def write_tables(plan: StudyPlan, outdir: str | Path) -> None:
    """Write every table of the cohort.

    Args:
        plan: the cohort's plan.
        outdir: the folder to write into (file names: :data:`mustsurv.study.layout.DEMO_TABLES`).
    """
    out = Path(outdir)
    write_clinical(plan, out / DEMO_TABLES["clinical"])
    write_rna_cnv(plan, out / DEMO_TABLES["rna"], out / DEMO_TABLES["cnv"])
    write_maf(plan, out / DEMO_TABLES["maf"])
    write_families(out / DEMO_TABLES["gene_families"])
    write_slide_sheet(plan, out / DEMO_TABLES["slide_sheet"])
    write_truth(plan, out / DEMO_TABLES["truth"])
