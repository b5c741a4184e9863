"""Table 2's reference predictions of every fold of a cohort from its trained MUST models (thin adapter over
mustsurv.evaluate.references)."""

import torch

from mustsurv.cohort.store import FeatureStore
from mustsurv.evaluate.predictions import write_predictions
from mustsurv.evaluate.references import reference_predictions
from mustsurv.logging_utils import log_to_file
from mustsurv.models.batch import set_max_tokens
from mustsurv.train.pipeline import load_fold
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import load_checkpoint, training_device

log = log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
store = FeatureStore(budget_gb=snakemake.params.feature_cache_gb)  # shared by the job's folds
set_max_tokens(snakemake.params.max_tokens)
device = training_device(snakemake.params.device, snakemake.resources.gpu)
selection = Selection.from_config(snakemake.params.selection)
for k, (split, ckpt) in enumerate(zip(snakemake.input.splits, snakemake.input.models)):
    data = {"cohort": snakemake.input.cohort, "split": split, "tokens": snakemake.input.get("tokens"),
            "summary": snakemake.input.get("summary")}
    fold = load_fold(data, selection, store)
    model, _ = load_checkpoint(ckpt, device)
    for name, pred in reference_predictions(model, list(fold.train), list(fold.test)).items():
        write_predictions(pred, snakemake.output[name][k])
        log.info("fold %d %s: %d rows", k, name, len(pred))
