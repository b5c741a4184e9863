"""Slides -> patch features: tissue segmentation and tiling, embedding, per-cohort slide summary.

Slides are processed in batches of `slides.batch_slides` per job (one rule per cohort and batch, defined
below at parse time): starting Python, torch and timm takes longer than embedding a small slide, and a
cluster should not see one job per slide. Every per-slide file keeps its own path, so any single
slide's features can be asked for as a target. A slide that cannot be read gets failure outputs
(status `failed`, the error in their attributes) and the rest of its batch goes on; the cohort's slide
summary then stops the run naming it (or leaves it out with `slides.skip_failed`), so no finished
slide's outputs are ever discarded. A cohort with `features_dir` skips these rules: its summary is built
from the precomputed TRIDENT/CLAM feature files. Paths come from mustsurv.study.layout.

Extra magnifications (`slides.target_mpp` after the first, e.g. DMML's 10x) are tiled in the main
magnification's tissue mask and embedded by the same encoder into their own folders and summary; their
rules exist for every configured magnification but run only when a requested method reads them.
"""

TILING = {k: SLIDES[k] for k in ("mpp_tolerance", "patch_size", "min_tissue_fraction", "region_patches")}
TILING["target_mpp"] = STUDY.magnifications[0]
EMBED = {k: SLIDES[k] for k in ("batch_size", "num_workers", "region_patches", "read_retries")}

ENCODER = SLIDES["encoder"]  # a registry name or timm:<arch> (the schema checks the form at parse time)
ENCODER_DIR = ENCODER.replace(":", "-")  # folder name of its logs (layout.features does the same)

for _cohort in STUDY.embedded_cohorts():
    _sheet = STUDY.slide_sheet(_cohort)
    _slides = STUDY.slides(_cohort)
    _qc_shown = STUDY.report_qc_slides(_cohort)  # the HTML report shows these slides' QC images
    for _batch, _ids in STUDY.slide_batches(_cohort).items():
        _outs = {s: layout.slide_outputs(_cohort, s) for s in _ids}

        rule:
            name:
                rule_name("slides_patch", _cohort, _batch)
            input:
                slides=[_slides[s] for s in _ids],
                sheet=[_sheet] if _sheet else [],
            output:
                geojson=[o["geojson"] for o in _outs.values()],
                qc=[report(o["qc"], caption="../report/qc.rst", category="Slide QC", subcategory=_cohort)
                    if s in _qc_shown else o["qc"] for s, o in _outs.items()],
                coords=[o["coords"] for o in _outs.values()],
            params:
                slide_ids=_ids,
                segmentation=SLIDES["segmentation"],
                tiling=TILING,
                retries=SLIDES["read_retries"],
            log:
                f"logs/slides/{_cohort}/patch/{_batch}.log",
            benchmark:
                f"benchmarks/rules/slides/{_cohort}/patch/{_batch}.tsv"
            conda:
                "../../envs/mustsurv.yaml"
            threads: 1
            resources:
                mem_mb=4000,
                runtime=5 + 2 * len(_ids),
            script:
                "../scripts/slides_patch.py"

        rule:
            name:
                rule_name("slides_embed", _cohort, _batch)
            input:
                slides=[_slides[s] for s in _ids],
                coords=[o["coords"] for o in _outs.values()],
            output:
                features=[layout.features(_cohort, s, ENCODER) for s in _ids],
            params:
                slide_ids=_ids,
                encoder=ENCODER,
                weights=(SLIDES["encoder_weights"] or {}).get(ENCODER),
                embed=EMBED,
                device=SLIDES["device"],
            log:
                f"logs/slides/{_cohort}/features/{ENCODER_DIR}/{_batch}.log",
            benchmark:
                f"benchmarks/rules/slides/{_cohort}/features/{ENCODER_DIR}/{_batch}.tsv"
            conda:
                "../../envs/mustsurv.yaml"
            threads: SLIDES["threads"]
            resources:
                **SLIDES["embed_resources"],
            script:
                "../scripts/slides_embed.py"

        for _mpp in STUDY.magnifications[1:]:
            _coords = [layout.magnification_coords(_cohort, s, _mpp) for s in _ids]
            _tag = layout.mpp_folder(_mpp)

            rule:
                name:
                    rule_name("slides_tile", _cohort, _batch, _tag)
                input:
                    slides=[_slides[s] for s in _ids],
                    geojson=[o["geojson"] for o in _outs.values()],
                    sheet=[_sheet] if _sheet else [],
                output:
                    coords=_coords,
                params:
                    slide_ids=_ids,
                    tiling={**TILING, "target_mpp": _mpp},
                    retries=SLIDES["read_retries"],
                log:
                    f"logs/slides/{_cohort}/patch/{_tag}/{_batch}.log",
                benchmark:
                    f"benchmarks/rules/slides/{_cohort}/patch/{_tag}/{_batch}.tsv"
                conda:
                    "../../envs/mustsurv.yaml"
                threads: 1
                resources:
                    mem_mb=4000,
                    runtime=5 + 2 * len(_ids),
                script:
                    "../scripts/slides_tile.py"

            rule:
                name:
                    rule_name("slides_embed", _cohort, _batch, _tag)
                input:
                    slides=[_slides[s] for s in _ids],
                    coords=_coords,
                output:
                    features=[layout.features(_cohort, s, ENCODER, _mpp) for s in _ids],
                params:
                    slide_ids=_ids,
                    encoder=ENCODER,
                    weights=(SLIDES["encoder_weights"] or {}).get(ENCODER),
                    embed=EMBED,
                    device=SLIDES["device"],
                log:
                    f"logs/slides/{_cohort}/features/{ENCODER}/{_tag}/{_batch}.log",
                benchmark:
                    f"benchmarks/rules/slides/{_cohort}/features/{ENCODER}/{_tag}/{_batch}.tsv"
                conda:
                    "../../envs/mustsurv.yaml"
                threads: SLIDES["threads"]
                resources:
                    **SLIDES["embed_resources"],
                script:
                    "../scripts/slides_embed.py"


rule slides_summary_magnification:
    input:
        features=lambda wc: list(STUDY.slide_features(wc.cohort, wc.mpp).values()),
        sheet=lambda wc: [STUDY.slide_sheet(wc.cohort)] if STUDY.slide_sheet(wc.cohort) else [],
    output:
        summary=layout.slide_summary("{cohort}", "{mpp}"),
    params:
        slides=lambda wc: list(STUDY.slide_features(wc.cohort, wc.mpp)),
        patients=lambda wc: STUDY.slide_patients(wc.cohort),
        skip_failed=SLIDES["skip_failed"],
    log:
        "logs/slides/{cohort}/summary_mpp{mpp}.log",
    benchmark:
        "benchmarks/rules/slides/{cohort}/summary_mpp{mpp}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/slides_summary.py"


rule slides_summary:
    input:
        features=lambda wc: list(STUDY.slide_features(wc.cohort).values()),
        sheet=lambda wc: [STUDY.slide_sheet(wc.cohort)] if STUDY.slide_sheet(wc.cohort) else [],
    output:
        summary=layout.slide_summary("{cohort}"),
        provenance=layout.slide_provenance("{cohort}"),
    params:
        slides=lambda wc: list(STUDY.slide_features(wc.cohort)),
        patients=lambda wc: STUDY.slide_patients(wc.cohort),
        skip_failed=SLIDES["skip_failed"],
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
