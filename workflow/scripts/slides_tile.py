"""Tiling of a batch of slides at an extra magnification inside their tissue masks -> coords h5 per slide
(thin adapter over mustsurv.slides.steps)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.steps import tile_batch

log_to_file(snakemake.log[0])
ids = snakemake.params.slide_ids
tile_batch(
    dict(zip(ids, snakemake.input.slides)),
    snakemake.input.sheet[0] if snakemake.input.sheet else None,
    dict(zip(ids, snakemake.input.geojson)),
    dict(zip(ids, snakemake.output.coords)),
    snakemake.params.tiling,
    snakemake.params.retries,
)
