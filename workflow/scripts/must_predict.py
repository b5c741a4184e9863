"""Predict the test patients of one fold with a trained MUST model (thin adapter)."""

import torch

from mustsurv.logging_utils import log_to_file
from mustsurv.train.pipeline import predict_must

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
data = {k: snakemake.input.get(k) for k in ("cohort", "split", "tokens", "summary")}
predict_must(snakemake.input.model, data, snakemake.output.predictions, snakemake.output.decomposition,
             snakemake.params.inference, snakemake.params.seed)
