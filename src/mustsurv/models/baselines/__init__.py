"""Table 1 baselines, each registered in the model registry under its name.

Pathology only: ``abmil``, ``transmil``; genomics only: ``mlp``, ``snn``; complete-data multimodal:
``survpath``, ``cmta``. The common interface (loss for the shared trainer, per-scenario prediction,
``scenarios`` / ``uses_pathology`` / ``uses_genomics`` / ``same_modalities`` class
attributes) is :class:`~mustsurv.models.baselines.base.BaselineModel`.
"""

from mustsurv.models.baselines.abmil import ABMIL
from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.baselines.cmta import CMTA
from mustsurv.models.baselines.mlp import GenomicMLP
from mustsurv.models.baselines.snn import SNN
from mustsurv.models.baselines.survpath import SurvPath
from mustsurv.models.baselines.transmil import TransMILSurv

__all__ = ["ABMIL", "CMTA", "SNN", "BaselineModel", "GenomicMLP", "SurvPath", "TransMILSurv"]
