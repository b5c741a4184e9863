"""Train one DMML stage on every fold of a cohort (thin adapter over mustsurv.train.dmml)."""

import torch

from mustsurv.logging_utils import log_to_file
from mustsurv.train.dmml import run_dmml_stage
from mustsurv.train.dmml_data import MagnificationBags
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import training_device

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.config["training"]["threads"])  # the config's, not --cores': same arithmetic
device = training_device(snakemake.params.device, snakemake.resources.gpu)
summaries = list(snakemake.input.summaries)
bags = MagnificationBags(snakemake.input.cohort, summaries, snakemake.params.dmml["n_tokens"],  # shared by the folds
                         budget_gb=snakemake.config["training"]["feature_cache_gb"])
n = len(snakemake.output)
teachers = snakemake.input.get("teacher") or [None] * n
students = snakemake.input.get("student") or [None] * n
for split, out, teacher, student in zip(snakemake.input.splits, snakemake.output, teachers, students):
    data = {"cohort": snakemake.input.cohort, "split": split, "tokens": snakemake.input.tokens,
            "summaries": summaries}
    run_dmml_stage(snakemake.params.stage, data, out, snakemake.params.dmml, snakemake.params.seed,
                   Selection.from_config(snakemake.params.selection), teacher=teacher, student=student, bags=bags,
                   device=device)
