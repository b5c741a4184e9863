"""MUST training per cohort and fold: stage 1 warm-up, stage 2 full objective, stage 3 latent diffusion."""


rule must_stage1:
    input:
        unpack(fold_data),
    output:
        "results/cohorts/{cohort}/models/must/fold{fold}/stage1.pt",
    params:
        stage=1,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/fold{fold}/stage1.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/fold{fold}/stage1.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule must_stage2:
    input:
        unpack(fold_data),
        previous="results/cohorts/{cohort}/models/must/fold{fold}/stage1.pt",
    output:
        "results/cohorts/{cohort}/models/must/fold{fold}/stage2.pt",
    params:
        stage=2,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/fold{fold}/stage2.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/fold{fold}/stage2.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule must_stage3:
    input:
        unpack(fold_data),
        previous="results/cohorts/{cohort}/models/must/fold{fold}/stage2.pt",
    output:
        "results/cohorts/{cohort}/models/must/fold{fold}/ldm.pt",
    params:
        stage=3,
        must=config["must"],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/must/fold{fold}/stage3.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/must/fold{fold}/stage3.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_train.py"


rule baseline:
    input:
        unpack(fold_data),
    output:
        model="results/cohorts/{cohort}/models/{method}/fold{fold}/model.pt",
        predictions="results/cohorts/{cohort}/predictions/{method}/fold{fold}.tsv",
    wildcard_constraints:
        method="|".join(BASELINES),
    params:
        cfg=lambda wc: config["baselines"][wc.method],
        seed=config["training"]["seed"],
    log:
        "logs/train/{cohort}/{method}/fold{fold}.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/{method}/fold{fold}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/baseline.py"
