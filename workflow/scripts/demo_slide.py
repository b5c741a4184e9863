"""Render and write one demo slide as an Aperio SVS (thin adapter over mustsurv.demo)."""

from mustsurv.demo import DemoSettings, make_plan, write_slide
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
plan = make_plan(snakemake.wildcards.cohort, DemoSettings.from_config(snakemake.params.demo))
write_slide(plan, snakemake.wildcards.slide, snakemake.output.svs)
spec = plan.slide(snakemake.wildcards.slide)
log.info("wrote %s: %dx%d px at %dx (%.4f um/px)", snakemake.output.svs, spec.width, spec.height,
         spec.magnification, spec.mpp)
