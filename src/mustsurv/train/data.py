"""The train and test datasets of one cohort and fold, as every training rule loads them."""

from __future__ import annotations

from pathlib import Path

from mustsurv.cohort.dataset import CohortFoldDataset
from mustsurv.cohort.store import FeatureStore


def fold_datasets(
    cohort_tsv: str | Path,
    split_json: str | Path,
    tokens_h5: str | Path | None = None,
    summary_tsv: str | Path | None = None,
    store: FeatureStore | None = None,
) -> tuple[CohortFoldDataset, CohortFoldDataset]:
    """Build (train, test) of one fold sharing one in-memory feature store; the omics scaler is fit on train only.

    Args:
        cohort_tsv: the cohort table.
        split_json: the fold record.
        tokens_h5: the family tokens, or None for a cohort without genomics.
        summary_tsv: the slide summary, or None for a cohort without slides.
        store: pass the same store for every fold of a cohort so its bags are read from disk once per job;
            a new one when None.

    Returns:
        The train and test datasets.
    """
    store = store if store is not None else FeatureStore()
    train = CohortFoldDataset(cohort_tsv, tokens_h5, split_json, summary_tsv, part="train", store=store)
    test = CohortFoldDataset(cohort_tsv, tokens_h5, split_json, summary_tsv, part="test",
                             scaler=train.scaler, store=store)
    return train, test
