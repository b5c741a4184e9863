"""Predict every fold's test patients with a DMML checkpoint (thin adapter over mustsurv.train.dmml)."""

import torch

from mustsurv.logging_utils import log_to_file
from mustsurv.train.dmml import predict_dmml
from mustsurv.train.dmml_data import MagnificationBags
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
device = training_device(snakemake.params.device, snakemake.resources.gpu)
summaries = list(snakemake.input.summaries)
bags = MagnificationBags(snakemake.input.cohort, summaries, snakemake.params.dmml["n_tokens"],  # shared by the folds
                         budget_gb=snakemake.config["training"]["feature_cache_gb"])
for split, model, out in zip(snakemake.input.splits, snakemake.input.models, snakemake.output.predictions):
    data = {"cohort": snakemake.input.cohort, "split": split, "tokens": snakemake.input.tokens,
            "summaries": summaries}
    predict_dmml(model, data, out, snakemake.params.dmml, snakemake.params.seed,
                 Selection.from_config(snakemake.params.selection), bags=bags, device=device)
