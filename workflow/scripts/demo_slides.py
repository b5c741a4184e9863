"""Render and write a batch of demo slides as Aperio SVS files (thin adapter over mustsurv.demo)."""

from mustsurv.demo.plan import plan_from_config
from mustsurv.demo.slides import write_slide
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
plan = plan_from_config(snakemake.params.cohort, snakemake.params.demo)
for slide_id, path in zip(snakemake.params.slide_ids, snakemake.output.svs):
    write_slide(plan, slide_id, path)
    spec = plan.slide(slide_id)
    log.info("wrote %s: %dx%d px at %dx (%.4f um/px)", path, spec.width, spec.height, spec.magnification, spec.mpp)
