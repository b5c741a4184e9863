"""One table of MUST's analysis experiments (Table 3, Fig. 4, supplement Table 4) from the runs' fold
predictions (thin adapter over mustsurv.evaluate.ablation)."""

from mustsurv.evaluate.ablation import build_table
from mustsurv.evaluate.tables import PredictionFile, fold_cindices, write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
params = snakemake.params
files = [PredictionFile(cohort, label, k, path)
         for label, cohorts in params.runs.items() for cohort, paths in cohorts.items() for k, path in enumerate(paths)]
table = build_table(params.table, fold_cindices(files), list(params.cohorts))
write_table(table, snakemake.output.table)
log.info("%s:\n%s", params.table.name, table.to_string(index=False))
