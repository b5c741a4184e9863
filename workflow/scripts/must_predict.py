"""Predict the test patients of every fold of a cohort with its trained MUST models (thin adapter)."""

import torch

from mustsurv.cohort.store import FeatureStore
from mustsurv.logging_utils import log_to_file
from mustsurv.models.batch import set_max_tokens
from mustsurv.train.pipeline import predict_must
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
device = training_device(snakemake.params.device, snakemake.resources.gpu)
store = FeatureStore(budget_gb=snakemake.params.feature_cache_gb)  # shared by the job's folds
set_max_tokens(snakemake.params.max_tokens)
out = snakemake.output
for split, model, tsv, npz, no_ldm in zip(snakemake.input.splits, snakemake.input.models, out.predictions,
                                         out.decomposition, out.no_ldm):
    data = {"cohort": snakemake.input.cohort, "split": split, "tokens": snakemake.input.get("tokens"),
            "summary": snakemake.input.get("summary")}
    predict_must(model, data, tsv, npz, snakemake.params.inference, snakemake.params.seed,
                 Selection.from_config(snakemake.params.selection), store=store, out_no_ldm=no_ldm, device=device)
