"""One cohort's long C-index file and its Table 1 / Table 2 (thin adapter over mustsurv.evaluate.report)."""

from mustsurv.config import must_config_label
from mustsurv.evaluate.report import cohort_long_table, layout
from mustsurv.evaluate.tables import write_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
cohort = snakemake.wildcards.cohort
long = cohort_long_table(cohort, snakemake.params.predictions, snakemake.input.cohort, list(snakemake.input.splits),
                         snakemake.input.get("truth"))
long = long.assign(selection=snakemake.params.selection, must_config=must_config_label(snakemake.params.must),
                   endpoint=snakemake.params.endpoint)
write_table(long, snakemake.output.long, sep="\t")
for key in ("table1", "table2"):
    table = layout(long, [cohort], key)
    write_table(table, snakemake.output[key])
    log.info("%s of %s:\n%s", key, cohort, table.to_string(index=False))
