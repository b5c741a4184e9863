"""Training per cohort, every fold in one job: MUST's three stages (warm-up, full objective, latent diffusion)
and the baselines. One job runs the cohort's folds one after another: each fold of a demo-sized model
trains in seconds, less than starting Python and torch, and a cluster still gets one job per cohort,
stage and method. Each fold's checkpoint is written as soon as it is done; per-epoch progress files let
a killed job resume.
"""


rule must_stage1:
    input:
        unpack(cohort_data),
    output:
        per_fold("results/cohorts/{cohort}/models/must/fold{fold}/stage1.pt"),
    params:
        stage=1,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/stage1.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/stage1.tsv"
    priority: 30  # MUST's stages are the longest chain: start it before the baselines
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule must_stage2:
    input:
        unpack(cohort_data),
        previous=per_fold("results/cohorts/{cohort}/models/must/fold{fold}/stage1.pt"),
    output:
        per_fold("results/cohorts/{cohort}/models/must/fold{fold}/stage2.pt"),
    params:
        stage=2,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/stage2.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/stage2.tsv"
    priority: 20  # MUST's stages are the longest chain: start it before the baselines
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule must_stage3:
    input:
        unpack(cohort_data),
        previous=per_fold("results/cohorts/{cohort}/models/must/fold{fold}/stage2.pt"),
    output:
        per_fold("results/cohorts/{cohort}/models/must/fold{fold}/ldm.pt"),
    params:
        stage=3,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/stage3.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/stage3.tsv"
    priority: 10  # MUST's stages are the longest chain: start it before the baselines
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule baseline:
    input:
        unpack(cohort_data),
    output:
        models=per_fold("results/cohorts/{cohort}/models/{method}/fold{fold}/model.pt"),
        predictions=per_fold("results/cohorts/{cohort}/predictions/{method}/fold{fold}.tsv"),
    wildcard_constraints:
        method="|".join(BASELINES) or "(?!)",  # no baseline configured: match nothing
    params:
        cfg=lambda wc: config["baselines"][wc.method],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/{method}.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/{method}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/baseline.py"
