"""Attention heatmaps (target `heatmaps`, not in the default run): for each cohort with slide files and each
study method with patch attention (must, abmil, transmil), every test patient's slides scored by the fold
model that did not train on the patient: heatmap over the thumbnail, gallery of the top-k and bottom-k
patches (mustsurv.evaluate.heatmaps, docs/heatmaps.md). Paths from mustsurv.study.layout."""


rule heatmap:
    input:
        unpack(lambda wc: STUDY.heatmap_inputs(wc.cohort, wc.method)),
    output:
        folder=report(
            directory(layout.heatmaps_dir("{cohort}", "{method}")),
            patterns=["sample/{name}.png"],
            caption="../report/heatmaps.rst",
            category="Attention heatmaps",
            subcategory="{cohort} {method}",
        ),
    wildcard_constraints:
        method="|".join(STUDY.heatmap_methods()) or "(?!)",
    params:
        cfg=config["heatmaps"],
        slides=lambda wc: STUDY.slides(wc.cohort),
        device=config["training"]["device"],
    log:
        "logs/heatmaps/{cohort}/{method}.log",
    benchmark:
        "benchmarks/rules/heatmaps/{cohort}/{method}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/heatmaps.py"


rule heatmaps:
    input:
        STUDY.heatmap_targets(),
