"""Train one stage of one MUST run on every fold of a cohort (thin adapter over mustsurv.train.pipeline)."""

import torch

from mustsurv.allocator import release_large_buffers
from mustsurv.cohort.store import FeatureStore
from mustsurv.logging_utils import log_to_file
from mustsurv.models.batch import set_max_tokens
from mustsurv.train.pipeline import run_must_stage
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
device = training_device(snakemake.params.device, snakemake.resources.gpu)
release_large_buffers()  # large bags: freed buffers leave the process (see mustsurv.allocator)
store = FeatureStore(budget_gb=snakemake.params.feature_cache_gb)  # shared by the job's folds
set_max_tokens(snakemake.params.max_tokens)
previous = snakemake.input.get("previous") or [None] * len(snakemake.output)
for k, (split, out, prev) in enumerate(zip(snakemake.input.splits, snakemake.output, previous)):
    data = {"cohort": snakemake.input.cohort, "split": split, "tokens": snakemake.input.get("tokens"),
            "summary": snakemake.input.get("summary")}
    run_must_stage(snakemake.params.stage, data, out, snakemake.params.must, snakemake.params.seed,
                   Selection.from_config(snakemake.params.selection), previous=prev, store=store,
                   variant=snakemake.params.variant, fold=k, device=device,
                   precision=snakemake.params.precision)
