"""Train a method's final model(s) on a cohort and write its bundle (thin adapter over mustsurv.deploy.final)."""

import torch

from mustsurv.deploy.final import build_bundle
from mustsurv.logging_utils import log_to_file
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
device = training_device(snakemake.params.device, snakemake.resources.gpu)
inp = snakemake.input
inputs = {"cohort": inp.cohort, "splits": list(inp.splits), "tokens": inp.get("tokens"), "summary": inp.get("summary")}
if snakemake.wildcards.method == "must":
    checkpoints = {s: list(inp[f"stage{s}"]) for s in (1, 2, 3)}
else:
    checkpoints = list(inp.models)
build_bundle(snakemake.wildcards.method, snakemake.wildcards.cohort, inputs, checkpoints, dict(snakemake.params.config),
             snakemake.output[0], device)
