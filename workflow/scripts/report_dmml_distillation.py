"""DMML's student with vs without distillation (thin adapter over mustsurv.evaluate.dmml)."""

from mustsurv.evaluate.dmml import distillation_table
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
table = distillation_table(snakemake.params.runs, list(snakemake.params.cohorts))
write_table(table, snakemake.output.table)
log.info("DMML distillation ablation:\n%s", table.to_string(index=False))
