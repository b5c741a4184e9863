"""Metrics and Kaplan–Meier figures of an external pair (thin adapter over mustsurv.deploy.external)."""

from mustsurv.deploy.external import external_report
from mustsurv.io import atomic_path
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
wc, inp, out, params = snakemake.wildcards, snakemake.input, snakemake.output, snakemake.params
truth = inp.truth if inp.get("truth") else None
rows = external_report(wc.train, wc.test, dict(zip(params.methods, inp.predictions)),
                       dict(zip(params.methods, inp.bundles)), out.metrics,
                       {tuple(key): path for key, path in zip(params.figures, out.km)}, truth=truth)
with atomic_path(out.summary) as tmp:
    rows.to_csv(tmp, index=False, float_format="%.6g")
log.info("%s -> %s:\n%s", wc.train, wc.test, rows.to_string(index=False))
