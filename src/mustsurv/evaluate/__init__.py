"""Evaluation: prediction files, C-index tables in the paper's layout, Kaplan–Meier and decomposition figures."""
