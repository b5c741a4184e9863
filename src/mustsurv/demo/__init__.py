"""Embedded synthetic demo study: real Aperio SVS files and TCGA-style tables with a planted signal.

Modules: :mod:`~mustsurv.demo.plan` (the deterministic plan of a cohort: patients, factors, slides),
:mod:`~mustsurv.demo.tables` (:func:`~mustsurv.demo.tables.write_tables`) and :mod:`~mustsurv.demo.slides`
(:func:`~mustsurv.demo.slides.write_slide`), used by ``workflow/rules/demo.smk``. Nothing is imported
here, so planning a cohort at parse time does not load the slide writer's imaging libraries.
"""
