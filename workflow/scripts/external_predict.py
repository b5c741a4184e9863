"""Predict an external test cohort with a training cohort's bundle (thin adapter over mustsurv.deploy.external)."""

import torch

from mustsurv.deploy.external import external_predictions
from mustsurv.logging_utils import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
wc, inp = snakemake.wildcards, snakemake.input
external_predictions(inp.bundle, inp.cohort, inp.get("tokens"), inp.get("summary"), snakemake.output[0],
                     f"{wc.train} -> {wc.test}")
