"""Slides -> patch features: tissue segmentation, tiling, embedding, per-cohort slide summary.

A cohort with `features_dir` skips the per-slide rules: its summary is built from the precomputed
TRIDENT/CLAM feature files. Helpers (slide_file, slide_features_of, slides_targets) are in common.smk.
"""


wildcard_constraints:
    encoder=r"[A-Za-z0-9_]+",


rule slides_tissue:
    input:
        slide=slide_file,
        sheet=slide_sheet_input,
    output:
        geojson="results/cohorts/{cohort}/slides/tissue/{slide}.geojson",
        qc="results/cohorts/{cohort}/slides/tissue/qc/{slide}.png",
    params:
        segmentation=SLIDES["segmentation"],
        retries=SLIDES["read_retries"],
    log:
        "logs/slides/{cohort}/tissue/{slide}.log",
    benchmark:
        "benchmarks/rules/slides/{cohort}/tissue/{slide}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/slides_tissue.py"


rule slides_coords:
    input:
        slide=slide_file,
        sheet=slide_sheet_input,
        geojson="results/cohorts/{cohort}/slides/tissue/{slide}.geojson",
    output:
        coords="results/cohorts/{cohort}/slides/coords/{slide}.h5",
    params:
        tiling={k: SLIDES[k] for k in ("target_mpp", "mpp_tolerance", "patch_size", "min_tissue_fraction",
                                       "region_patches")},
        retries=SLIDES["read_retries"],
    log:
        "logs/slides/{cohort}/coords/{slide}.log",
    benchmark:
        "benchmarks/rules/slides/{cohort}/coords/{slide}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/slides_coords.py"


rule slides_embed:
    input:
        slide=slide_file,
        coords="results/cohorts/{cohort}/slides/coords/{slide}.h5",
    output:
        features="results/cohorts/{cohort}/slides/features/{encoder}/{slide}.h5",
    params:
        weights=lambda wc: (SLIDES["encoder_weights"] or {}).get(wc.encoder),
        embed={k: SLIDES[k] for k in ("batch_size", "num_workers", "region_patches", "read_retries")},
        device=SLIDES["device"],
    log:
        "logs/slides/{cohort}/features/{encoder}/{slide}.log",
    benchmark:
        "benchmarks/rules/slides/{cohort}/features/{encoder}/{slide}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: SLIDES["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    script:
        "../scripts/slides_embed.py"


rule slides_summary:
    input:
        features=lambda wc: list(slide_features_of(wc.cohort).values()),
        sheet=slide_sheet_input,
    output:
        summary="results/cohorts/{cohort}/slides/summary.tsv",
    params:
        slides=lambda wc: list(slide_features_of(wc.cohort)),
    log:
        "logs/slides/{cohort}/summary.log",
    benchmark:
        "benchmarks/rules/slides/{cohort}/summary.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/slides_summary.py"
