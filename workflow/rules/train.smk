"""Training per cohort, every fold in one job: MUST's three stages (warm-up, full objective, latent diffusion)
for the main run ``must`` and every analysis variant ``must_*`` (mustsurv.study.runs), and the baselines.
One job runs the cohort's folds one after another: each fold of a demo-sized model trains in seconds, less
than starting Python and torch, and a cluster still gets one job per cohort, run, stage and method. Each
fold's checkpoint is written as soon as it is done; per-epoch progress files let a killed job resume.
"""


for _stage in layout.MUST_STAGES:

    rule:
        name:
            f"must_stage{_stage}"
        input:
            unpack(lambda wc, stage=_stage: STUDY.must_stage_inputs(wc.cohort, wc.run, stage)),
        output:
            per_fold(lambda k, stage=_stage: layout.must_checkpoint("{cohort}", "{run}", k, stage)),
        wildcard_constraints:
            run="|".join(r for r, v in STUDY.must_runs.items() if _stage in v.stages()),
        params:
            stage=_stage,
            variant=lambda wc: STUDY.must_runs[wc.run],
            must=config["must"],
            seed=config["training"]["seed"],
            selection=config["selection"],
            device=config["training"]["device"],
            precision=config["training"]["precision"],
            feature_cache_gb=config["training"]["feature_cache_gb"],
            max_tokens=config["training"]["max_tokens_per_batch"],
        log:
            f"logs/train/{{cohort}}/{{run}}/stage{_stage}.log",
        benchmark:
            f"benchmarks/rules/train/{{cohort}}/{{run}}/stage{_stage}.tsv"
        priority: 40 - 10 * _stage  # MUST's stages are the longest chain: start it before the baselines
        conda:
            "../../envs/mustsurv.yaml"
        threads: config["training"]["threads"]
        resources:
            mem_mb=STUDY.training_mem_mb("must"),
            runtime=(120 if _stage == 3 else 60) * len(FOLDS),
            gpu=config["training"]["gpu"],
        script:
            "../scripts/must_train.py"


rule baseline:
    input:
        unpack(lambda wc: STUDY.training_inputs(wc.cohort)),
    output:
        models=per_fold(lambda k: layout.baseline_model("{cohort}", "{method}", k)),
        predictions=per_fold(lambda k: layout.predictions("{cohort}", "{method}", k)),
    params:
        cfg=lambda wc: config["baselines"][wc.method],
        seed=config["training"]["seed"],
        selection=config["selection"],
        device=config["training"]["device"],
        feature_cache_gb=config["training"]["feature_cache_gb"],
        max_tokens=config["training"]["max_tokens_per_batch"],
    log:
        "logs/train/{cohort}/{method}.log",
    benchmark:
        "benchmarks/rules/train/{cohort}/{method}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=lambda wc: STUDY.training_mem_mb(wc.method),
        runtime=60 * len(FOLDS),
        gpu=config["training"]["gpu"],
    script:
        "../scripts/baseline.py"
