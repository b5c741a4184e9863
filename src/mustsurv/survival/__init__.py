"""Discrete-time survival: hazards, survival curves, the NLL loss and evaluation metrics."""

from mustsurv.survival.loss import (
    hazards_from_logits,
    nll_loss,
    risk_from_hazards,
    survival_from_hazards,
)
from mustsurv.survival.metrics import c_index, kaplan_meier, logrank

__all__ = [
    "c_index",
    "hazards_from_logits",
    "kaplan_meier",
    "logrank",
    "nll_loss",
    "risk_from_hazards",
    "survival_from_hazards",
]
