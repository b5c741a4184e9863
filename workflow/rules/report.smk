"""Tables in the paper's layout, Kaplan–Meier and decomposition figures."""

rule cohort_tables:
    input:
        unpack(cohort_report_inputs),
    output:
        long="results/cohorts/{cohort}/cindex_folds.tsv",
        table1="results/cohorts/{cohort}/table1.csv",
        table2="results/cohorts/{cohort}/table2.csv",
    params:
        predictions=lambda wc: prediction_files(wc.cohort),
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
        expand("results/cohorts/{cohort}/cindex_folds.tsv", cohort=COHORTS),
    output:
        long="results/tables/cindex_folds.tsv",
        table1="results/tables/table1.csv",
        table2="results/tables/table2.csv",
    params:
        cohorts=COHORTS,
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


rule km_figures:
    input:
        lambda wc: [p for paths in prediction_files(wc.cohort).values() for p in paths],
    output:
        figures=km_paths("{cohort}"),
        pvalues="results/cohorts/{cohort}/logrank.tsv",
    params:
        predictions=lambda wc: prediction_files(wc.cohort),
        figures=lambda wc: [(m, s, km_path(wc.cohort, m, s)) for m in METHODS for s in scenarios_of(m)],
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
        expand(
            "results/cohorts/{{cohort}}/predictions/must/fold{k}_decomposition.npz",
            k=range(config["cv"]["folds"]),
        ),
    output:
        ecdf="results/figures/decomposition/{cohort}_ecdf.png",
        cosine_map="results/figures/decomposition/{cohort}_cosine_map.png",
        means="results/cohorts/{cohort}/decomposition.tsv",
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
