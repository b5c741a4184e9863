"""Write a demo cohort's tables (thin adapter over mustsurv.demo)."""

from pathlib import Path

from mustsurv.demo.plan import DemoSettings, make_plan
from mustsurv.demo.tables import write_tables
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
plan = make_plan(snakemake.wildcards.cohort, DemoSettings.from_config(snakemake.params.demo))
write_tables(plan, Path(snakemake.output.clinical).parent)
log.info("wrote tables of %d patients (%d slides) to %s", len(plan.patients), len(plan.slides),
         Path(snakemake.output.clinical).parent)
