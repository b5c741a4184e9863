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
        long=report("results/tables/cindex_folds.tsv", caption="../report/cindex_folds.rst", category="Tables"),
        table1=report("results/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
        table2=report("results/tables/table2.csv", caption="../report/table2.rst", category="Tables"),
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
        figures=[
            report(p, caption="../report/km.rst", category="Kaplan-Meier", subcategory="{cohort}")
            for p in km_paths("{cohort}")
        ],
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
        ecdf=report("results/figures/decomposition/{cohort}_ecdf.png", caption="../report/decomposition_ecdf.rst",
                    category="Decomposition", subcategory="{cohort}"),
        cosine_map=report("results/figures/decomposition/{cohort}_cosine_map.png",
                          caption="../report/decomposition_map.rst", category="Decomposition",
                          subcategory="{cohort}"),
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
