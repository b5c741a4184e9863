"""Kaplan–Meier figures of one cohort for every method and scenario (thin adapter)."""

from mustsurv.evaluate.report import km_figures
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
figures = {(method, scenario): path for method, scenario, path in snakemake.params.figures}
pvalues = km_figures(snakemake.wildcards.cohort, snakemake.params.predictions, figures, snakemake.params.selection)
write_table(pvalues, snakemake.output.pvalues, sep="\t")
log.info("log-rank p-values:\n%s", pvalues.to_string(index=False))
