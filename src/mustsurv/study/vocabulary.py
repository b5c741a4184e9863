"""The study's words, spelled once: modalities, scenarios and the patient column.

Importable without torch, numpy or pandas, so the workflow's parse step and every module share them.
The paper-layout tables keep the paper's ``P`` / ``G`` column labels; everything else spells the
modalities out.
"""

from __future__ import annotations

from typing import Literal

PATHOLOGY = "pathology"
GENOMICS = "genomics"
MODALITIES: tuple[str, ...] = (PATHOLOGY, GENOMICS)

Scenario = Literal["complete", "missing_genomics", "missing_pathology"]
SCENARIOS: tuple[Scenario, ...] = ("complete", "missing_genomics", "missing_pathology")

PATIENT_ID = "patient_id"

SLIDE_SOURCES: tuple[str, ...] = ("sheet", "glob", "gdc_manifest", "gdc_sample_sheet")
"""Keys of ``cohorts.<name>.slides`` that list a cohort's slides (exactly one is given)."""

ENDPOINTS: tuple[str, ...] = ("OS", "DSS", "PFI", "DFI")
"""Survival endpoints (``cohorts.<name>.endpoint``): overall, disease-specific, progression-free, disease-free."""
