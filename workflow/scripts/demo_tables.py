"""Write a demo cohort's tables (thin adapter over mustsurv.demo)."""

from pathlib import Path

from mustsurv.demo.plan import plan_from_config
from mustsurv.demo.tables import write_tables
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
plan = plan_from_config(snakemake.wildcards.cohort, snakemake.params.demo)
write_tables(plan, Path(snakemake.output.clinical).parent)
log.info("wrote tables of %d patients (%d slides) to %s", len(plan.patients), len(plan.slides),
         Path(snakemake.output.clinical).parent)
