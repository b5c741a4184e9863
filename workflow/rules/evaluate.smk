"""Test-fold predictions of a MUST run (the main run ``must`` or a variant) in the three scenarios (one job per
cohort and run), the "without LDM" predictions of the two missing scenarios (a zero tensor in place of the
missing û, supplement Table 4) and the decomposition cosines."""


rule must_predict:
    input:
        unpack(lambda wc: STUDY.training_inputs(wc.cohort)),
        models=lambda wc: STUDY.must_checkpoints(wc.cohort, wc.run, 3),
    output:
        predictions=per_fold(lambda k: layout.predictions("{cohort}", "{run}", k)),
        decomposition=per_fold(lambda k: layout.decomposition_cosines("{cohort}", "{run}", k)),
        no_ldm=per_fold(lambda k: layout.predictions("{cohort}", "{run}", k, ldm=False)),
    params:
        inference=config["must"]["inference"],
        seed=config["training"]["seed"],
        selection=config["selection"],
        device=config["training"]["device"],
        feature_cache_gb=config["training"]["feature_cache_gb"],
        max_tokens=config["training"]["max_tokens_per_batch"],
    log:
        "logs/evaluate/{cohort}/{run}.log",
    benchmark:
        "benchmarks/rules/evaluate/{cohort}/{run}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=STUDY.training_mem_mb("must"),
        runtime=60,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_predict.py"


rule must_references:
    input:
        unpack(lambda wc: STUDY.training_inputs(wc.cohort)),
        models=lambda wc: STUDY.must_checkpoints(wc.cohort, "must", 3),
    output:
        **{name: per_fold(lambda k, name=name: layout.predictions("{cohort}", name, k)) for name in STUDY.references},
    params:
        selection=config["selection"],
        device=config["training"]["device"],
        feature_cache_gb=config["training"]["feature_cache_gb"],
        max_tokens=config["training"]["max_tokens_per_batch"],
    log:
        "logs/evaluate/{cohort}/must_references.log",
    benchmark:
        "benchmarks/rules/evaluate/{cohort}/must_references.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=STUDY.training_mem_mb("must"),
        runtime=30,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/must_references.py"
