"""MUST's predictions of the test patients of every fold in the three scenarios (one job per cohort), and
the "without LDM" predictions of the two missing scenarios (a zero tensor in place of the missing û,
supplement Table 4)."""


rule must_predict:
    input:
        unpack(cohort_data),
        models=per_fold("results/cohorts/{cohort}/models/must/fold{fold}/ldm.pt"),
    output:
        predictions=per_fold("results/cohorts/{cohort}/predictions/must/fold{fold}.tsv"),
        decomposition=per_fold("results/cohorts/{cohort}/predictions/must/fold{fold}_decomposition.npz"),
        no_ldm=per_fold("results/cohorts/{cohort}/predictions/must/fold{fold}_no_ldm.tsv"),
    params:
        inference=config["must"]["inference"],
        seed=config["training"]["seed"],
    log:
        "logs/evaluate/{cohort}/must.log",
    benchmark:
        "benchmarks/rules/evaluate/{cohort}/must.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_predict.py"
