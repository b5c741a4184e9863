"""Slides -> patch features: reader (MPP, level choice), tissue segmentation, tiling, encoders, embedding.

Result files per slide (see DESIGN.md): tissue GeoJSON + QC PNG, coords ``.h5``, features ``.h5`` in
TRIDENT layout; per cohort a ``summary.tsv`` (see :mod:`mustsurv.slides.summary`).
"""
