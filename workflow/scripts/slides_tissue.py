"""Tissue segmentation of one slide -> GeoJSON + QC PNG (thin adapter over mustsurv.slides.steps)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.steps import tissue_step

log_to_file(snakemake.log[0])
tissue_step(
    snakemake.input.slide,
    snakemake.wildcards.slide,
    snakemake.input.sheet[0] if snakemake.input.sheet else None,
    snakemake.output.geojson,
    snakemake.output.qc,
    snakemake.params.segmentation,
    snakemake.params.retries,
)
