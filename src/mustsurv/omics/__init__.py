"""Genomics: table reading (``tables``), RNA/CNV/MAF matrix readers (``matrices``), clinical/MCAT survival
readers (``survival``), gene families (``families``) and per-patient family tokens (``tokens``).

TCGA barcode rules (patient of a sample, sample types) live in :mod:`mustsurv.barcodes`; nothing here
imports :mod:`mustsurv.cohort`.
"""
