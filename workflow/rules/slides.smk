"""Slides -> patch features: tissue segmentation and tiling, embedding, per-cohort slide summary.

Slides are processed in batches of `slides.batch_slides` per job (one rule per cohort and batch, defined
below at parse time): starting Python, torch and timm takes longer than embedding a small slide, and a
cluster should not see one job per slide. Every per-slide file keeps its own path, so any single
slide's features can be asked for as a target. A slide that cannot be read gets failure outputs
(status `failed`, the error in their attributes) and the rest of its batch goes on; the cohort's slide
summary then stops the run naming it (or leaves it out with `slides.skip_failed`), so no finished
slide's outputs are ever discarded. A cohort with `features_dir` skips these rules: its summary is built
from the precomputed TRIDENT/CLAM feature files. Helpers are in common.smk.
"""

TILING = {k: SLIDES[k] for k in ("target_mpp", "mpp_tolerance", "patch_size", "min_tissue_fraction", "region_patches")}
EMBED = {k: SLIDES[k] for k in ("batch_size", "num_workers", "region_patches", "read_retries")}

for _cohort in embedded_cohorts():
    _sheet = slide_sheet_of(_cohort)
    for _batch, _ids in batches(slides_of(_cohort), SLIDES["batch_slides"]).items():
        _outs = {s: slide_outputs(_cohort, s) for s in _ids}

        rule:
            name:
                rule_name("slides_patch", _cohort, _batch)
            input:
                slides=[slides_of(_cohort)[s] for s in _ids],
                sheet=[_sheet] if _sheet else [],
            output:
                geojson=[o["geojson"] for o in _outs.values()],
                qc=[o["qc"] for o in _outs.values()],
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
                slides=[slides_of(_cohort)[s] for s in _ids],
                coords=[o["coords"] for o in _outs.values()],
            output:
                features=[features_path(_cohort, s) for s in _ids],
            params:
                slide_ids=_ids,
                encoder=ENCODER,
                weights=(SLIDES["encoder_weights"] or {}).get(ENCODER),
                embed=EMBED,
                device=SLIDES["device"],
            log:
                f"logs/slides/{_cohort}/features/{ENCODER}/{_batch}.log",
            benchmark:
                f"benchmarks/rules/slides/{_cohort}/features/{ENCODER}/{_batch}.tsv"
            conda:
                "../../envs/mustsurv.yaml"
            threads: SLIDES["threads"]
            resources:
                **SLIDES["embed_resources"],
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
