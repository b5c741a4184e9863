"""Study-wide long survival metrics and their summary table over all cohorts (thin adapter)."""

import pandas as pd

from mustsurv.evaluate.metrics import summary_table
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
long = pd.concat([pd.read_csv(p, sep="\t", float_precision="round_trip") for p in snakemake.input], ignore_index=True)
write_table(long, snakemake.output.long, sep="\t")
summary = summary_table(long, list(snakemake.params.cohorts))
write_table(summary, snakemake.output.summary)
log.info("survival metrics (mean ± SD over folds):\n%s", summary.to_string(index=False))
