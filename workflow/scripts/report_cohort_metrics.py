"""One cohort's survival metrics per fold, method and scenario (thin adapter over mustsurv.evaluate.report)."""

from mustsurv.config import must_config_label
from mustsurv.evaluate.report import cohort_metrics
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
cohort = snakemake.wildcards.cohort
long = cohort_metrics(cohort, snakemake.params.predictions, snakemake.input.cohort, list(snakemake.input.splits),
                      snakemake.input.get("truth"))
long = long.assign(selection=snakemake.params.selection, must_config=must_config_label(snakemake.params.must))
write_table(long, snakemake.output.long, sep="\t")
notes = long[long["note"].fillna("") != ""]
if len(notes):
    log.warning("%s: %d metric rows carry a note (dropped times or values scikit-survival rejected):\n%s", cohort,
                len(notes), notes.to_string(index=False))
log.info("%s: mean over folds\n%s", cohort,
         long.groupby(["method", "scenario", "metric"], sort=False)["value"].mean().unstack().to_string())
