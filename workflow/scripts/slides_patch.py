"""Tissue segmentation + tiling of a batch of slides -> GeoJSON, QC PNG, coords h5 per slide
(thin adapter over mustsurv.slides.steps)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.steps import patch_batch

log_to_file(snakemake.log[0])
ids = snakemake.params.slide_ids
outputs = {
    s: {"geojson": g, "qc": q, "coords": c}
    for s, g, q, c in zip(ids, snakemake.output.geojson, snakemake.output.qc, snakemake.output.coords)
}
patch_batch(
    dict(zip(ids, snakemake.input.slides)),
    snakemake.input.sheet[0] if snakemake.input.sheet else None,
    outputs,
    snakemake.params.segmentation,
    snakemake.params.tiling,
    snakemake.params.retries,
)
