"""Tables in the paper's layout, survival metrics, Kaplan–Meier and decomposition figures."""


rule cohort_tables:
    input:
        unpack(lambda wc: STUDY.cohort_report_inputs(wc.cohort)),
    output:
        long=layout.cohort_report("{cohort}", "cindex_folds.tsv"),
        table1=layout.cohort_report("{cohort}", "table1.csv"),
        table2=layout.cohort_report("{cohort}", "table2.csv"),
    params:
        predictions=lambda wc: STUDY.prediction_files(wc.cohort),
        selection=config["selection"]["mode"],
        must=config["must"],
        endpoint=lambda wc: STUDY.endpoint(wc.cohort),
    log:
        "logs/report/{cohort}/tables.log",
    benchmark:
        "benchmarks/rules/report/{cohort}/tables.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_cohort_tables.py"


rule study_tables:
    input:
        [layout.cohort_report(c, "cindex_folds.tsv") for c in COHORTS],
    output:
        long=report(layout.study_table("cindex_folds.tsv"), caption="../report/cindex_folds.rst", category="Tables"),
        table1=report(layout.study_table("table1.csv"), caption="../report/table1.rst", category="Tables"),
        table2=report(layout.study_table("table2.csv"), caption="../report/table2.rst", category="Tables"),
        provenance=layout.study_table("provenance.json"),
    params:
        cohorts=COHORTS,
        provenance={"selection": config["selection"], "must": config["must"], "cv": config["cv"],
                    "training": config["training"], "endpoints": {c: STUDY.endpoint(c) for c in COHORTS},
                    "patient_ids": {c: STUDY.patient_id_rule(c) for c in COHORTS}},
    log:
        "logs/report/study_tables.log",
    benchmark:
        "benchmarks/rules/report/study_tables.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_study_tables.py"


rule cohort_metrics:
    input:
        unpack(lambda wc: STUDY.cohort_report_inputs(wc.cohort)),
    output:
        long=layout.cohort_report("{cohort}", layout.METRICS_FOLDS),
    params:
        predictions=lambda wc: STUDY.prediction_files(wc.cohort),
        selection=config["selection"]["mode"],
        must=config["must"],
    log:
        "logs/report/{cohort}/metrics.log",
    benchmark:
        "benchmarks/rules/report/{cohort}/metrics.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_cohort_metrics.py"


rule study_metrics:
    input:
        [layout.cohort_report(c, layout.METRICS_FOLDS) for c in COHORTS],
    output:
        long=report(layout.study_table(layout.METRICS_FOLDS), caption="../report/metrics_folds.rst",
                    category="Tables"),
        summary=report(layout.study_table(layout.METRICS_SUMMARY), caption="../report/metrics_summary.rst",
                       category="Tables"),
    params:
        cohorts=COHORTS,
    log:
        "logs/report/study_metrics.log",
    benchmark:
        "benchmarks/rules/report/study_metrics.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_study_metrics.py"


rule km_figures:
    input:
        lambda wc: [p for paths in STUDY.prediction_files(wc.cohort).values() for p in paths],
    output:
        figures=[
            report(layout.km_figure("{cohort}", m, s), caption="../report/km.rst", category="Kaplan-Meier",
                   subcategory="{cohort}")
            for m in STUDY.reported
            for s in scenarios_of(m)
        ],
        pvalues=layout.cohort_report("{cohort}", "logrank.tsv"),
    params:
        predictions=lambda wc: STUDY.prediction_files(wc.cohort),
        figures=lambda wc: STUDY.km_figures(wc.cohort),
        selection=config["selection"]["mode"],
    log:
        "logs/report/{cohort}/km.log",
    benchmark:
        "benchmarks/rules/report/{cohort}/km.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/report_km.py"


rule decomposition_figures:
    input:
        per_fold(lambda k: layout.decomposition_cosines("{cohort}", "must", k)),
    output:
        ecdf=report(layout.decomposition_figure("{cohort}", "ecdf"), caption="../report/decomposition_ecdf.rst",
                    category="Decomposition", subcategory="{cohort}"),
        cosine_map=report(layout.decomposition_figure("{cohort}", "cosine_map"),
                          caption="../report/decomposition_map.rst", category="Decomposition",
                          subcategory="{cohort}"),
        means=layout.cohort_report("{cohort}", "decomposition.tsv"),
    log:
        "logs/report/{cohort}/decomposition.log",
    benchmark:
        "benchmarks/rules/report/{cohort}/decomposition.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_decomposition.py"
