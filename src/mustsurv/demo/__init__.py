"""Embedded synthetic demo study: real Aperio SVS files and TCGA-style tables with a planted signal.

Entry points used by ``workflow/rules/demo.smk``: :func:`write_tables` and :func:`write_slide`.
"""

from __future__ import annotations

from pathlib import Path

from mustsurv.demo.plan import DemoSettings, StudyPlan, make_plan
from mustsurv.demo.slides import render_canvas, write_svs
from mustsurv.demo.tables import (
    write_clinical,
    write_families,
    write_maf,
    write_rna_cnv,
    write_slide_sheet,
    write_truth,
)

TABLES = {
    "clinical": "clinical.tsv",
    "rna": "rna.tsv",
    "cnv": "cnv.tsv",
    "maf": "mutations.maf",
    "gene_families": "gene_families.csv",
    "slide_sheet": "slides.tsv",
    "truth": "truth.tsv",
}

__all__ = ["DemoSettings", "StudyPlan", "make_plan", "write_tables", "write_slide", "TABLES"]


def write_tables(plan: StudyPlan, outdir: str | Path) -> None:
    """Write every table of the cohort (see :data:`TABLES`) into ``outdir``."""
    out = Path(outdir)
    write_clinical(plan, out / TABLES["clinical"])
    write_rna_cnv(plan, out / TABLES["rna"], out / TABLES["cnv"])
    write_maf(plan, out / TABLES["maf"])
    write_families(out / TABLES["gene_families"])
    write_slide_sheet(plan, out / TABLES["slide_sheet"])
    write_truth(plan, out / TABLES["truth"])


def write_slide(plan: StudyPlan, slide_id: str, path: str | Path) -> None:
    """Render one slide of the plan and write it as an Aperio SVS at ``path``."""
    spec = plan.slide(slide_id)
    patient = plan.patient(spec.patient_id)
    image = render_canvas(spec, patient.shared, patient.pathology, patient.genomics_in_tissue)
    write_svs(path, image, spec.mpp, spec.magnification, slide_id)
