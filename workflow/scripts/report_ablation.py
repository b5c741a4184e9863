"""One table of MUST's analysis experiments (Table 3, Fig. 4, supplement Table 4) from the runs' fold
predictions (thin adapter over mustsurv.evaluate.ablation)."""

from mustsurv.evaluate import ablation
from mustsurv.evaluate.tables import PredictionFile, fold_cindices, write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
params = snakemake.params
files = [PredictionFile(cohort, label, k, path)
         for label, cohorts in params.runs.items() for cohort, paths in cohorts.items() for k, path in enumerate(paths)]
long = fold_cindices(files)
cohorts = list(params.cohorts)
if params.kind == "warmup":
    table = ablation.warmup_table(long, cohorts)
elif params.kind == "ldm_conditioning":
    table = ablation.ldm_conditioning_table(long, cohorts)
elif params.kind == "rank":
    table = ablation.rank_table(long, cohorts, list(params.ranks), params.main_rank)
    ablation.rank_figure(table, snakemake.output.figure)
else:
    table = ablation.training_missingness_table(long, cohorts, list(params.fractions))
write_table(table, snakemake.output.table)
log.info("%s:\n%s", params.kind, table.to_string(index=False))
