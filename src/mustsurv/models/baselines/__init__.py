"""Baselines, each registered in the model registry under its name.

Table 1 — pathology only: ``abmil``, ``transmil``; genomics only: ``mlp``, ``snn``; complete-data
multimodal: ``survpath``, ``cmta``; classical elastic-net Cox models (fit by
:func:`mustsurv.train.classical.fit_classical`, not the shared trainer): ``coxph_genomics``,
``coxph_pathology``, ``coxph_concat``. Table 2 — missing-modality methods: ``smil``, ``m3care``, ``shaspec``,
``ldcvae`` (on :class:`~mustsurv.models.baselines.missing.MissingModalityBaseline`). The common interface
(loss for the shared trainer, per-scenario prediction, ``scenarios`` / ``uses_pathology`` /
``uses_genomics`` / ``same_modalities`` class attributes) is
:class:`~mustsurv.models.baselines.base.BaselineModel`.
"""

from mustsurv.models.baselines.abmil import ABMIL
from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.baselines.cmta import CMTA
from mustsurv.models.baselines.coxnet import (
           CoxnetBaseline,
           CoxnetConcat,
           CoxnetGenomics,
           CoxnetPathology,
)
from mustsurv.models.baselines.ldcvae import LDCVAE
from mustsurv.models.baselines.m3care import M3Care
from mustsurv.models.baselines.missing import MissingModalityBaseline
from mustsurv.models.baselines.mlp import GenomicsMLP
from mustsurv.models.baselines.shaspec import ShaSpec
from mustsurv.models.baselines.smil import SMIL
from mustsurv.models.baselines.snn import SNN
from mustsurv.models.baselines.survpath import SurvPath
from mustsurv.models.baselines.transmil import TransMILSurv

__all__ = ["ABMIL", "CMTA", "LDCVAE", "SMIL", "SNN", "BaselineModel", "CoxnetBaseline", "CoxnetConcat",
           "CoxnetGenomics", "CoxnetPathology", "GenomicsMLP", "M3Care", "MissingModalityBaseline", "ShaSpec",
           "SurvPath", "TransMILSurv"]
