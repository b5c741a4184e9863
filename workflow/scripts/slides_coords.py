"""Tiling of one slide inside its tissue polygons -> coords h5 (thin adapter over mustsurv.slides.steps)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.steps import coords_step

log_to_file(snakemake.log[0])
coords_step(
    snakemake.input.slide,
    snakemake.wildcards.slide,
    snakemake.input.sheet[0] if snakemake.input.sheet else None,
    snakemake.input.geojson,
    snakemake.output.coords,
    snakemake.params.tiling,
    snakemake.params.retries,
)
