"""Study-wide long C-index file, Table 1 / Table 2 over all cohorts, and the provenance of the run (which
selection protocol and MUST configuration produced the rows; thin adapter)."""

import json
from importlib.metadata import version

import pandas as pd

from mustsurv.config import must_config_label
from mustsurv.evaluate.report import layout
from mustsurv.evaluate.tables import write_table
from mustsurv.io import write_text_atomic
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
# round_trip: pandas' default float parser can be one ulp off, which can flip a rounded cell
long = pd.concat([pd.read_csv(p, sep="\t", float_precision="round_trip") for p in snakemake.input], ignore_index=True)
write_table(long, snakemake.output.long, sep="\t")
for key in ("table1", "table2"):
    table = layout(long, list(snakemake.params.cohorts), key)
    write_table(table, snakemake.output[key])
    log.info("%s:\n%s", key, table.to_string(index=False))
provenance = {**snakemake.params.provenance, "must_config": must_config_label(snakemake.params.provenance["must"]),
              "mustsurv_version": version("mustsurv")}
write_text_atomic(snakemake.output.provenance, json.dumps(provenance, indent=1) + "\n")
