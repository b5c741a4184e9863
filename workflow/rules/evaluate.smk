"""Predictions of the test patients of each fold in the three scenarios."""


rule must_predict:
    input:
        unpack(fold_data),
        model="results/cohorts/{cohort}/models/must/fold{fold}/ldm.pt",
    output:
        predictions="results/cohorts/{cohort}/predictions/must/fold{fold}.tsv",
        decomposition="results/cohorts/{cohort}/predictions/must/fold{fold}_decomposition.npz",
    params:
        inference=config["must"]["inference"],
        seed=config["training"]["seed"],
    log:
        "logs/evaluate/{cohort}/must/fold{fold}.log",
    benchmark:
        "benchmarks/rules/evaluate/{cohort}/must/fold{fold}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_predict.py"
