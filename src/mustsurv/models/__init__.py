"""Models: a registry of survival methods, shared layers, MUST and its latent diffusion models."""

from mustsurv.models import (
    baselines,  # noqa: F401,E402  (registers the Table 1 baselines)
    dmml,  # noqa: F401,E402  (registers DMML's teacher and student)
)
from mustsurv.models.batch import PatientItem, SurvivalBatch, collate
from mustsurv.models.must import MUST, Decomposition
from mustsurv.models.registry import available_models, build_model, register_model

__all__ = [
    "MUST",
    "Decomposition",
    "PatientItem",
    "SurvivalBatch",
    "available_models",
    "build_model",
    "collate",
    "register_model",
]
