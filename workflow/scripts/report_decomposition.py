"""MUST decomposition figures of one cohort, pooled over the test folds (thin adapter)."""

import pandas as pd

from mustsurv.evaluate.report import decomposition_figures
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
means = decomposition_figures(snakemake.wildcards.cohort, list(snakemake.input), snakemake.output.ecdf,
                              snakemake.output.cosine_map)
write_table(pd.DataFrame([means]), snakemake.output.means, sep="\t")
log.info("mean cosines: %s", means)
