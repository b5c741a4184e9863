"""Write a cohort's fold files with time-bin edges (thin adapter over mustsurv.cohort.splits)."""

from mustsurv.cohort.splits import build_folds, write_fold
from mustsurv.cohort.table import read_cohort_table
from mustsurv.logging_utils import log_to_file

log = log_to_file(snakemake.log[0])
p = snakemake.params
records = build_folds(read_cohort_table(snakemake.input.table), p.folds, p.seed, p.n_bins, p.validation_fraction,
                      p.splits_dir, p.patient_ids, p.group_by)
for path, record in zip(snakemake.output, records):
    write_fold(path, record)
log.info("wrote %d fold files", len(records))
