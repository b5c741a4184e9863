"""Embedded synthetic demo study: TCGA-style tables and Aperio SVS slides per demo cohort."""


rule demo_tables:
    output:
        **demo_table_paths("{cohort}"),
    params:
        demo=lambda wc: config["cohorts"][wc.cohort]["demo"],
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


rule demo_slide:
    output:
        svs=demo_slide_path("{cohort}", "{slide}"),
    params:
        demo=lambda wc: config["cohorts"][wc.cohort]["demo"],
    log:
        "logs/demo/{cohort}/slides/{slide}.log",
    benchmark:
        "benchmarks/rules/demo/{cohort}/slides/{slide}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/demo_slide.py"
