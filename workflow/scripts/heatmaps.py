"""Attention heatmaps of a method's test patients in one cohort (thin adapter over mustsurv.evaluate.heatmaps)."""

import torch

from mustsurv.evaluate.heatmaps import cohort_heatmaps
from mustsurv.logging_utils import log_to_file
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
cfg = snakemake.params.cfg
cohort_heatmaps(
    snakemake.wildcards.method,
    list(zip(snakemake.input.splits, snakemake.input.models)),
    snakemake.input.cohort,
    snakemake.input.summary,
    snakemake.params.slides,
    snakemake.output.folder,
    k=cfg["top_k"],
    max_patients=cfg["max_patients_per_fold"],
    sheet=snakemake.input.sheet[0] if snakemake.input.sheet else None,
    sample=cfg["report_sample"],
    device=training_device(snakemake.params.device, snakemake.resources.gpu),
)
