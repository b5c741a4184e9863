"""Train one baseline on one fold and predict its test patients (thin adapter over mustsurv.train.pipeline)."""

import torch

from mustsurv.logging_utils import log_to_file
from mustsurv.train.pipeline import run_baseline

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
data = {k: snakemake.input.get(k) for k in ("cohort", "split", "tokens", "summary")}
run_baseline(snakemake.wildcards.method, data, snakemake.output.model, snakemake.output.predictions,
             snakemake.params.cfg, snakemake.params.seed)
