"""Per-cohort slide summary from the features files (thin adapter over mustsurv.slides.steps)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.steps import summary_step

log_to_file(snakemake.log[0])
summary_step(
    dict(zip(snakemake.params.slides, snakemake.input.features)),
    snakemake.params.patients,
    snakemake.output.summary,
    snakemake.params.skip_failed,
    provenance_out=snakemake.output.get("provenance"),  # the main magnification's; an extra one is checked only
    cohort=snakemake.wildcards.cohort,
)
