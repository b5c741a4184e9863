"""Train one MUST stage for one cohort and fold (thin adapter over mustsurv.train.pipeline)."""

import torch

from mustsurv.logging_utils import log_to_file
from mustsurv.train.pipeline import run_must_stage

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
data = {k: snakemake.input.get(k) for k in ("cohort", "split", "tokens", "summary")}
run_must_stage(snakemake.params.stage, data, snakemake.output[0], snakemake.params.must, snakemake.params.seed,
               previous=snakemake.input.get("previous"))
