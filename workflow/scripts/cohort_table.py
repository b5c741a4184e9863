"""Assemble a cohort's patient table (thin adapter over mustsurv.cohort.table)."""

from mustsurv.cohort.table import build_cohort_table, read_survival, write_cohort_table
from mustsurv.logging_utils import log_to_file
from mustsurv.omics.tokens import read_tokens
from mustsurv.slides.summary import read_summary

log = log_to_file(snakemake.log[0])
inp = snakemake.input
keys = set(inp.keys())
survival = read_survival(clinical=inp.clinical if "clinical" in keys else None,
                         mcat_csv=inp.mcat_csv if "mcat_csv" in keys else None,
                         rule=snakemake.params.patient_ids, endpoint=snakemake.params.endpoint)
table = build_cohort_table(
    survival,
    genomics_patients=read_tokens(inp.tokens).patients if "tokens" in keys else None,
    summary=read_summary(inp.summary) if "summary" in keys else None,
    source=snakemake.wildcards.cohort,
)
write_cohort_table(table, snakemake.output[0])
log.info("wrote %s (%d patients)", snakemake.output[0], len(table))
