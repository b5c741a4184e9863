"""MUST's analysis experiments, built only when asked for (`snakemake --cores 2 ablations` or one table):
the warm-up and LDM-conditioning ablations (paper Table 3), the rank of the shared subspace (Fig. 4) and
training-time missingness (supplement Table 4). Each variant (mustsurv.train.variants) is one job per
cohort that trains and predicts every fold; the main MUST run is the reference of every comparison.
"""


rule must_variant:
    input:
        unpack(cohort_data),
        stage2=lambda wc: (
            [f"results/cohorts/{wc.cohort}/models/must/fold{k}/stage2.pt" for k in FOLDS]
            if VARIANTS[wc.variant].get("from_stage2")
            else []
        ),
    output:
        models=per_fold("results/cohorts/{cohort}/ablations/{variant}/fold{fold}.pt"),
        predictions=per_fold("results/cohorts/{cohort}/ablations/{variant}/fold{fold}.tsv"),
        no_ldm=per_fold("results/cohorts/{cohort}/ablations/{variant}/fold{fold}_no_ldm.tsv"),
    wildcard_constraints:
        variant="|".join(VARIANTS),
    params:
        variant=lambda wc: VARIANTS[wc.variant],
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/ablations/{cohort}/{variant}.log",
    benchmark:
        "benchmarks/rules/ablations/{cohort}/{variant}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=180 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_variant.py"


rule ablation_table:
    input:
        lambda wc: [p for runs in ablation_runs(wc.table).values() for paths in runs.values() for p in paths],
    output:
        table=report("results/tables/ablation_{table}.csv", caption="../report/ablation.rst", category="Ablations"),
    wildcard_constraints:
        table="warmup|ldm_conditioning",
    params:
        kind=lambda wc: wc.table,
        runs=lambda wc: ablation_runs(wc.table),
        cohorts=ABLATION_COHORTS,
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


rule ablation_rank:
    input:
        [p for runs in ablation_runs("rank").values() for paths in runs.values() for p in paths],
    output:
        table=report(ABLATION_TABLES["rank"], caption="../report/ablation.rst", category="Ablations"),
        figure=report("results/figures/ablation_rank.png", caption="../report/ablation_rank.rst",
                      category="Ablations"),
    params:
        kind="rank",
        runs=ablation_runs("rank"),
        cohorts=ABLATION_COHORTS,
        ranks=ABLATION_RANKS,
        main_rank=config["must"]["model"]["rank"],
    log:
        "logs/report/ablation_rank.log",
    benchmark:
        "benchmarks/rules/report/ablation_rank.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_ablation.py"


rule training_missingness_table:
    input:
        [p for runs in ablation_runs("training_missingness").values() for paths in runs.values() for p in paths],
    output:
        table=report(ABLATION_TABLES["training_missingness"], caption="../report/table4.rst", category="Ablations"),
    params:
        kind="training_missingness",
        runs=ablation_runs("training_missingness"),
        cohorts=ABLATION_COHORTS,
        fractions=config["ablations"]["unpaired_fractions"],
    log:
        "logs/report/table4_training_missingness.log",
    benchmark:
        "benchmarks/rules/report/table4_training_missingness.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_ablation.py"


rule ablations:
    input:
        list(ABLATION_TABLES.values()),
