"""Build a cohort's family tokens (thin adapter over mustsurv.omics.tokens)."""

from mustsurv.logging_utils import log_to_file
from mustsurv.omics.tokens import make_tokens, write_tokens

log = log_to_file(snakemake.log[0])
inp = snakemake.input
keys = set(inp.keys())
tokens = make_tokens(
    inp.gene_families,
    rna=inp.rna if "rna" in keys else None,
    cnv=inp.cnv if "cnv" in keys else None,
    maf=list(inp.maf) if "maf" in keys else None,
    mcat_csv=inp.mcat_csv if "mcat_csv" in keys else None,
    transform=snakemake.params.rna_transform,
    rule=snakemake.params.patient_ids,
)
write_tokens(snakemake.output[0], tokens)
log.info("wrote %s: %d patients, families %s, sizes %s", snakemake.output[0], len(tokens.patients),
         tokens.family_names, tokens.family_sizes)
