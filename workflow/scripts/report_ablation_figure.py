"""The figure of an analysis-experiment table (Fig. 4 from the rank table; thin adapter)."""

import pandas as pd

from mustsurv.evaluate.ablation import draw_figure
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
draw_figure(snakemake.wildcards.table, pd.read_csv(snakemake.input[0]), snakemake.output[0])
log.info("drew %s", snakemake.output[0])
