"""Every external pair's summary in one table (thin adapter over mustsurv.deploy.external)."""

from mustsurv.deploy.external import write_external_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
table = write_external_table(list(snakemake.input), snakemake.output[0])
log.info("wrote %s: %d row(s)", snakemake.output[0], len(table))
