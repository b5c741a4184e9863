"""Genomics: readers of RNA/CNV/MAF/clinical/MCAT tables, gene families, per-patient family tokens."""
