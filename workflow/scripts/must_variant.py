"""Train and evaluate one MUST variant on every fold of a cohort (thin adapter over mustsurv.train.variants)."""

import torch

from mustsurv.allocator import release_large_buffers
from mustsurv.cohort.store import FeatureStore
from mustsurv.logging_utils import log_to_file
from mustsurv.train.variants import run_must_variant

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
release_large_buffers()  # large bags: freed buffers leave the process (see mustsurv.allocator)
data = {"cohort": snakemake.input.cohort, "splits": list(snakemake.input.splits),
        "tokens": snakemake.input.get("tokens"), "summary": snakemake.input.get("summary")}
out = snakemake.output
run_must_variant(snakemake.params.variant, data, snakemake.params.must, out.models, out.predictions, out.no_ldm,
                 snakemake.params.seed, store=FeatureStore(), stage2=list(snakemake.input.stage2) or None)
