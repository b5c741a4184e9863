"""Deployment: final models, portable bundles, scoring new patients (``mustsurv predict``), external validation."""
