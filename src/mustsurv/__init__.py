"""mustsurv: multimodal survival prediction robust to missing modalities (MUST) as a Snakemake workflow."""

__version__ = "0.1.0"
