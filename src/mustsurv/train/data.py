"""The datasets of one cohort and fold, as every training rule loads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mustsurv.cohort.dataset import CohortFoldDataset
from mustsurv.cohort.store import FeatureStore


@dataclass
class FoldData:
    """One fold's datasets.

    Attributes:
        train: The patients a model is fit on (its omics scaler is fit on them).
        validation: The patients every choice is made on (epoch, early stop, grid point); None when the fold
            has none or they were folded into ``train``.
        test: The held-out patients; nothing is chosen or fit on them.
    """

    train: CohortFoldDataset
    validation: CohortFoldDataset | None
    test: CohortFoldDataset


def fold_datasets(
    cohort_tsv: str | Path,
    split_json: str | Path,
    tokens_h5: str | Path | None = None,
    summary_tsv: str | Path | None = None,
    store: FeatureStore | None = None,
    fit_on_validation: bool = False,
) -> FoldData:
    """The train, validation and test datasets of one fold, sharing one feature store and the train part's
    omics scaler.

    Args:
        cohort_tsv: the cohort table.
        split_json: the fold file (train / validation / test patients, bin edges).
        tokens_h5: the cohort's family tokens (None: no genomics).
        summary_tsv: the cohort's slide summary (None: no pathology).
        store: feature store shared by every fold of a job, so each bag is read from disk once.
        fit_on_validation: fit on train + validation and return no validation set (selection modes that
            choose nothing on validation patients: ``last_epoch``, ``optimistic``, and a refit).

    Returns:
        The fold's :class:`FoldData`.
    """
    store = store if store is not None else FeatureStore()
    parts = ("train", "validation") if fit_on_validation else ("train",)
    train = CohortFoldDataset(cohort_tsv, tokens_h5, split_json, summary_tsv, part=parts, store=store)

    def held_out(part: str) -> CohortFoldDataset:
        return CohortFoldDataset(cohort_tsv, tokens_h5, split_json, summary_tsv, part=part, scaler=train.scaler,
                                 store=store)

    validation = None
    if not fit_on_validation:
        validation = held_out("validation")
        validation = validation if len(validation) else None
    return FoldData(train, validation, held_out("test"))
