"""Embedded synthetic demo study: TCGA-style tables and Aperio SVS slides per demo cohort (slides in batches
of `slides.batch_slides` per job, like the slide rules)."""


rule demo_tables:
    output:
        **layout.demo_tables("{cohort}"),
    params:
        demo=lambda wc: STUDY.demo_block(wc.cohort),
    log:
        "logs/demo/{cohort}/tables.log",
    benchmark:
        "benchmarks/rules/demo/{cohort}/tables.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/demo_tables.py"


for _cohort in STUDY.demo_cohorts:
    for _batch, _ids in STUDY.slide_batches(_cohort).items():

        rule:
            name:
                rule_name("demo_slides", _cohort, _batch)
            output:
                svs=[layout.demo_slide(_cohort, s) for s in _ids],
            params:
                cohort=_cohort,
                demo=STUDY.demo_block(_cohort),
                slide_ids=_ids,
            log:
                f"logs/demo/{_cohort}/slides/{_batch}.log",
            benchmark:
                f"benchmarks/rules/demo/{_cohort}/slides/{_batch}.tsv"
            conda:
                "../../envs/mustsurv.yaml"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=2 + len(_ids),
            script:
                "../scripts/demo_slides.py"
