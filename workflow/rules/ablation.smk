"""MUST's analysis experiments, built only when asked for (`snakemake --cores 2 ablations` or one table):
the warm-up and LDM-conditioning ablations (paper Table 3), the rank of the shared subspace (Fig. 4) and
training-time missingness (supplement Table 4). Each table compares MUST runs (mustsurv.study.runs) whose
stages and predictions come from the same rules as the main run (train.smk, evaluate.smk); the main run
is the reference of every comparison.
"""


rule ablation_table:
    input:
        lambda wc: STUDY.ablation_inputs(wc.table),
    output:
        table=report(layout.ablation_table("{table}"), caption="../report/ablation.rst", category="Ablations"),
    params:
        table=lambda wc: STUDY.ablation_tables[wc.table],
        runs=lambda wc: STUDY.ablation_runs(wc.table),
        cohorts=STUDY.paired_cohorts,
    log:
        "logs/report/ablation_{table}.log",
    benchmark:
        "benchmarks/rules/report/ablation_{table}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_ablation.py"


rule ablation_figure:
    input:
        layout.ablation_table("{table}"),
    output:
        report(layout.ablation_figure("{table}"), caption="../report/ablation_rank.rst", category="Ablations"),
    wildcard_constraints:
        table="|".join(name for name, t in STUDY.ablation_tables.items() if t.figure) or "(?!)",
    log:
        "logs/report/ablation_{table}_figure.log",
    benchmark:
        "benchmarks/rules/report/ablation_{table}_figure.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_ablation_figure.py"


rule ablations:
    input:
        STUDY.ablation_targets(),
