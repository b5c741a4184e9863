"""Which methods go in which table, and which scenarios each method predicts.

A model class declares ``scenarios`` (the scenarios it predicts) and ``same_modalities`` (True when it
needs identical modalities at training and inference: the paper's † marker) as class attributes.
"""

from __future__ import annotations

from mustsurv.models.registry import model_class
from mustsurv.study.vocabulary import SCENARIOS

# Paper Table 1: unimodal and complete-data multimodal methods, then MUST.
TABLE1 = ("abmil", "transmil", "mlp", "snn", "survpath", "cmta", "must")
# Paper Table 2: missing-modality methods, then MUST.
TABLE2 = ("smil", "m3care", "shaspec", "ldcvae", "must")


def scenarios_of(method: str) -> tuple[str, ...]:
    """The scenarios ``method`` writes predictions for (in :data:`SCENARIOS` order)."""
    declared = getattr(model_class(method), "scenarios", SCENARIOS)
    return tuple(s for s in SCENARIOS if s in declared)


def dagger_of(method: str) -> bool:
    """Whether ``method`` needs identical modalities at training and inference (†)."""
    return bool(getattr(model_class(method), "same_modalities", False))
