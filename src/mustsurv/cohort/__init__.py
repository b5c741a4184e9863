"""Cohort assembly: slide lists, patient table, splits, time bins, fold-wise scaling, feature store."""
