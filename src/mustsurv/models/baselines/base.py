"""Common interface of the Table 1 baselines, as the shared trainer and the prediction code use it.

A baseline is an ``nn.Module`` whose ``forward(batch)`` maps a :class:`SurvivalBatch` of B patients to
(B, K) hazard logits. On top of that the base class gives:

* ``loss(batch) -> (loss, logs)``: the ``LossFn`` of :func:`mustsurv.train.trainer.train_epochs`
  (discrete-time NLL, paper Eq. 6; subclasses add their own terms);
* ``predict_logits(batch, scenario)`` / ``predict_survival(batch, scenario, ...)`` (B, K) /
  ``predict_risk(batch, scenario, ...)`` (B,) = −Σ_k S(k): evaluation in one of the scenarios the
  method supports, with the same call signature as ``MUST.predict_survival`` / ``MUST.predict_risk`` so
  :func:`mustsurv.train.must.predict` serves both;
* class attributes read by the workflow and the table builder: ``scenarios`` (the evaluation
  scenarios it fills), ``uses_pathology`` / ``uses_genomics`` (the P and G columns of Table 1),
  ``same_modalities`` (the ``†`` marker: the model needs the same modalities at training
  and inference);
* ``accepts(item)`` (whether a patient has every input the model reads, to select training patients)
  and ``input_kwargs(pathology_dim, family_dims)`` (the data-dependent constructor arguments).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from mustsurv.models.batch import PatientItem, SurvivalBatch
from mustsurv.study.vocabulary import SCENARIOS, Scenario
from mustsurv.survival import nll_loss, survival_from_hazards


def xavier_init(module: nn.Module) -> None:
    """Apply Xavier-normal weights and zero biases to every ``nn.Linear`` and unit LayerNorms.

    The ``initialize_weights`` convention of the MCAT/CMTA code bases.

    Args:
        module: the model, initialised in place.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BaselineModel(nn.Module, ABC):
    """Base of every baseline; see the module docstring for the interface.

    Attributes:
        scenarios: the scenarios the model is evaluated in.
        uses_pathology: the model reads pathology bags.
        uses_genomics: the model reads the genomic families.
        same_modalities: the model is trained on the modalities it is evaluated with.
        pathology_dim: D_path of the patch features (pathology models).
    """

    scenarios: ClassVar[tuple[Scenario, ...]] = ()
    uses_pathology: ClassVar[bool] = False
    uses_genomics: ClassVar[bool] = False
    same_modalities: ClassVar[bool] = True
    pathology_dim: int  # D_path of the patch features; set by the models that read pathology

    def __init__(self, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Set the survival settings shared by every baseline.

        Args:
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the NLL.

        Raises:
            ValueError: ``n_bins`` < 1.
        """
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = n_bins
        self.alpha = alpha

    # ------------------------------------------------------------------ data
    @classmethod
    def accepts(cls, item: PatientItem) -> bool:
        """Tell whether the patient has every modality the model reads.

        Args:
            item: one patient.

        Returns:
            True when the patient can be used.
        """
        return (not cls.uses_pathology or item["pathology"] is not None) and (
            not cls.uses_genomics or item["genomics"] is not None
        )

    @classmethod
    def input_kwargs(cls, pathology_dim: int | None, family_dims: Sequence[int] | None) -> dict[str, Any]:
        """Build the constructor arguments that come from the data.

        Args:
            pathology_dim: D_path of the patch features (pathology models), or None when the cohort has none.
            family_dims: d_k of the F gene families (genomics models), or None when the cohort has none.

        Returns:
            The keyword arguments the model reads.

        Raises:
            ValueError: the model reads a modality the cohort lacks.
        """
        kwargs: dict[str, Any] = {}
        if cls.uses_pathology:
            if not pathology_dim:
                raise ValueError(f"{cls.__name__} reads pathology, but the cohort has no patch features")
            kwargs["pathology_dim"] = int(pathology_dim)
        if cls.uses_genomics:
            if not family_dims:
                raise ValueError(f"{cls.__name__} reads genomics, but the cohort has no gene family tokens")
            kwargs["family_dims"] = [int(d) for d in family_dims]
        return kwargs

    def bags(self, batch: SurvivalBatch) -> list[Tensor]:
        """Collect the B pathology bags of the batch.

        Args:
            batch: B patients, each with a bag.

        Returns:
            B bags, each (N_i, D_path).

        Raises:
            ValueError: a patient has no bag or a bag is not a non-empty (N, D_path) matrix.
        """
        missing = [pid for pid, p in zip(batch.patient_ids, batch.pathology) if p is None]
        if missing:
            raise ValueError(f"{type(self).__name__} needs pathology; patients without slides: "
                             f"{', '.join(missing[:10])} (select training patients with .accepts())")
        bags = [p for p in batch.pathology if p is not None]
        for pid, bag in zip(batch.patient_ids, bags):
            if bag.ndim != 2 or bag.shape[0] == 0 or bag.shape[1] != self.pathology_dim:
                raise ValueError(f"patient {pid}: a bag must be a non-empty (N, {self.pathology_dim}) matrix of "
                                 f"patch features, got shape {tuple(bag.shape)}; rebuild the model for this "
                                 f"encoder's feature size")
        return bags

    def families(self, batch: SurvivalBatch) -> list[Tensor]:
        """Collect the F family tensors of the batch.

        Args:
            batch: B patients, each with genomics.

        Returns:
            F tensors (B, d_k).

        Raises:
            ValueError: a patient has no genomics.
        """
        missing = [pid for pid, has in zip(batch.patient_ids, batch.has_genomics.tolist()) if not has]
        if batch.genomics is None or missing:
            missing = missing or list(batch.patient_ids)
            raise ValueError(f"{type(self).__name__} needs genomics; patients without it: "
                             f"{', '.join(missing[:10])} (select training patients with .accepts())")
        return list(batch.genomics)

    # ------------------------------------------------------------------ model
    @abstractmethod
    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Hazard logits (B, K) of ``batch``."""

    def survival_loss(self, logits: Tensor, batch: SurvivalBatch) -> Tensor:
        """Compute the batch-mean discrete-time NLL with the model's ``alpha``.

        Args:
            logits: (B, K) hazard logits.
            batch: the batch (bins and events).

        Returns:
            Scalar loss.
        """
        return nll_loss(logits, batch.bins, batch.event, self.alpha)

    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute the batch-mean survival NLL.

        Args:
            batch: B patients.

        Returns:
            ``(loss, {"surv": value})``.
        """
        surv = self.survival_loss(self(batch), batch)
        return surv, {"surv": float(surv.detach())}

    # ------------------------------------------------------------------ inference
    def check_scenario(self, scenario: str) -> None:
        """Raise unless ``scenario`` is one this method is evaluated in.

        Args:
            scenario: a scenario name.

        Raises:
            ValueError: unknown scenario, or one the model is not evaluated in.
        """
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
        if scenario not in self.scenarios:
            raise ValueError(f"{type(self).__name__} is evaluated only in {', '.join(self.scenarios)}, "
                             f"not in {scenario!r}")

    @torch.no_grad()
    def predict_logits(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict hazard logits in ``scenario`` (the model is switched to eval mode).

        Args:
            batch: B patients.
            scenario: one of the model's :attr:`scenarios`.

        Returns:
            (B, K) hazard logits.
        """
        self.check_scenario(scenario)
        self.eval()
        return self(batch)

    @torch.no_grad()
    def predict_survival(self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50,
                         seed: int = 0) -> Tensor:
        """Survival after each time bin in ``scenario``.

        Args:
            batch: B patients.
            scenario: One of the method's ``scenarios``.
            n_samples: MUST's sampling argument, taken for a common call signature (unused: the baselines
                are deterministic at inference).
            steps: Likewise unused.
            seed: Likewise unused.

        Returns:
            (B, K) survival ``S(k) = Π_{j≤k} (1 − h_j)``, non-increasing along k.
        """
        return survival_from_hazards(torch.sigmoid(self.predict_logits(batch, scenario)))

    @torch.no_grad()
    def predict_risk(self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50,
                     seed: int = 0) -> Tensor:
        """Predict the risk −Σ_k S(k) in ``scenario``, from :meth:`predict_survival`.

        Args:
            batch: B patients.
            scenario: one of the model's :attr:`scenarios`.
            n_samples: MUST's sampling argument, taken for a common call signature (unused: the baselines are
                deterministic at inference).
            steps: as ``n_samples``.
            seed: as ``n_samples``.

        Returns:
            (B,) risk scores.
        """
        return -self.predict_survival(batch, scenario, n_samples, steps, seed).sum(dim=1)
