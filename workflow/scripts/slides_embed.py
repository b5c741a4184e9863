"""Patch embedding of a batch of slides -> features h5 per slide in TRIDENT layout
(thin adapter over mustsurv.slides.embed)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.embed import embed_batch

log_to_file(snakemake.log[0])
embed_batch(
    list(zip(snakemake.params.slide_ids, snakemake.input.slides, snakemake.input.coords, snakemake.output.features)),
    snakemake.params.encoder,
    snakemake.params.weights,
    snakemake.params.embed,
    snakemake.params.device,
    snakemake.config["slides"]["threads"],  # the config's, not --cores': the same arithmetic at any core count
)
