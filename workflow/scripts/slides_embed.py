"""Patch embedding of one slide -> features h5 in TRIDENT layout (thin adapter over mustsurv.slides.embed)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.slides.embed import embed_step

log_to_file(snakemake.log[0])
embed_step(
    snakemake.input.slide,
    snakemake.input.coords,
    snakemake.output.features,
    snakemake.wildcards.encoder,
    snakemake.params.weights,
    snakemake.params.embed,
    snakemake.params.device,
    snakemake.threads,
)
