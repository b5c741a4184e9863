"""Model selection: which patients a choice is made on, and the criterion.

Three modes (config ``selection.mode``), one per run:

* ``validation`` (default): models are fit on the fold's ``train`` patients; every choice - the epoch
  kept, early stopping, a grid point, the diffusion models' stopping step - is made on its ``validation``
  patients. The test patients influence nothing.
* ``last_epoch``: the paper's protocol - fit on ``train`` + ``validation`` for the configured epochs, keep
  the last.
* ``optimistic``: fit on ``train`` + ``validation`` and keep the epoch that is best **on the test fold**,
  as several published codebases report. Only for comparing with published rows; never a default.

The criterion (``selection.metric``): ``loss``, the survival NLL of the model's complete-data prediction
(the survival terms of its training loss evaluated in eval mode), or ``cindex``, 1 − Harrell's C-index of
its risk in its first scenario. Lower is better for both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from mustsurv.cohort.store import announce
from mustsurv.config import FromConfig
from mustsurv.models.batch import PatientItem, SurvivalBatch, collate, item_buckets
from mustsurv.survival.metrics import c_index
from mustsurv.train.data import FoldData

MODES = ("validation", "last_epoch", "optimistic")
METRICS = ("loss", "cindex")


@dataclass(frozen=True)
class Selection(FromConfig):
    """The ``selection`` config block.

    Attributes:
        mode: ``validation``, ``last_epoch`` or ``optimistic`` (module docstring).
        metric: ``loss`` or ``cindex``.
        patience: Epochs (stage 3: evaluations) without improvement before stopping early.
        stage3_evaluations: How many times over its steps a diffusion model's validation loss is evaluated.
        grid: Per baseline, optimiser settings to try (``{method: {key: [values]}}``); the point with the best
            monitored value is kept (``validation`` mode only).
        refit: Retrain a baseline on train + validation for its selected number of epochs after selection.
    """

    mode: str = "validation"
    metric: str = "loss"
    patience: int = 10
    stage3_evaluations: int = 50
    grid: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    refit: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"selection.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.metric not in METRICS:
            raise ValueError(f"selection.metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if (self.grid or self.refit) and self.mode != "validation":
            raise ValueError("selection.grid and selection.refit choose on validation patients; they need "
                             "selection.mode: validation")

    def grid_points(self, method: str) -> list[dict[str, Any]]:
        """Every combination of ``method``'s grid (``[{}]`` without one), in a fixed order."""
        axes = self.grid.get(method, {})
        keys = sorted(axes)
        return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))] or [{}]

    @property
    def fit_on_validation(self) -> bool:
        """Whether models are fit on train + validation (every mode but ``validation``)."""
        return self.mode != "validation"

    def monitored(self, data: FoldData) -> Sequence[PatientItem] | None:
        """The patients the criterion is evaluated on.

        Args:
            data: the fold's datasets.

        Returns:
            Its validation patients, its test patients (``optimistic``) or None (``last_epoch``).

        Raises:
            ValueError: In ``validation`` mode when the fold has no validation patients.
        """
        if self.mode == "last_epoch":
            return None
        if self.mode == "optimistic":
            return data.test
        if data.validation is None:
            raise ValueError("selection.mode validation needs validation patients; set cv.validation_fraction > 0 "
                             "(or selection.mode: last_epoch)")
        return data.validation


def survival_terms(logs: dict[str, float]) -> float:
    """The survival part of a training loss's logs: the sum of its ``surv*`` terms."""
    terms = [v for k, v in logs.items() if k.startswith("surv")]
    if not terms:
        raise ValueError(f"the loss logs {sorted(logs)} have no survival term (a key starting with 'surv')")
    return float(sum(terms))


def make_monitor(selection: Selection, items: Sequence[PatientItem] | None,
                 loss_fn: Callable[[SurvivalBatch], tuple[object, dict[str, float]]],
                 cindex_fn: Callable[[Sequence[PatientItem]], float], chunk: int = 8) -> Callable[[], float] | None:
    """The criterion as a function of the model's current weights (None when nothing is monitored).

    Args:
        selection: The selection settings.
        items: The monitored patients (:meth:`Selection.monitored`).
        loss_fn: The model's training loss (batch -> (loss, logs)); ``loss`` takes its survival terms.
        cindex_fn: Patients -> Harrell's C-index of the model's risk in its first scenario (``cindex``).
        chunk: The most patients per forward pass (:func:`~mustsurv.models.batch.item_buckets`).

    Returns:
        A function giving the criterion (lower is better), or None.
    """
    if items is None:
        return None
    items = list(items)
    if not items:
        raise ValueError("no patient to select on; check cv.validation_fraction")
    device_of = _device_of(loss_fn)

    def loss() -> float:
        total = 0.0
        announce(items)
        for part in item_buckets(items, chunk):
            _, logs = loss_fn(collate(part).to(device_of()))
            total += survival_terms(logs) * len(part)
        return total / len(items)

    def cindex() -> float:
        return 1.0 - cindex_fn(items)

    return loss if selection.metric == "loss" else cindex


def _device_of(loss_fn: Callable) -> Callable[[], object]:
    """The device of the model a bound loss method belongs to."""
    model = getattr(loss_fn, "__self__", None)
    if model is None:
        return lambda: "cpu"
    return lambda: next(model.parameters()).device


def scenario_cindex(predict_fn: Callable[..., object], model: object, scenario: str,
                    seed: int) -> Callable[[Sequence[PatientItem]], float]:
    """Harrell's C-index of a model's risk in one scenario, as a function of the patients.

    Args:
        predict_fn: :func:`mustsurv.train.must.predict`.
        model: the model.
        scenario: the scenario (its patients are those that allow it).
        seed: sampling seed.

    Returns:
        Patients -> C-index.
    """

    def cindex(items: Sequence[PatientItem]) -> float:
        pred = predict_fn(model, items, (scenario,), seed=seed)
        return c_index(pred["time"], pred["event"], pred["risk"])

    return cindex
