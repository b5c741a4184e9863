"""DMML (disentangled multimodal learning, arXiv 2508.16479; docs/method.md): three checkpoints per fold -
the teacher (slides at every magnification + RNA), the WSI-only student pre-trained on slides, and the
student distilled from the frozen teacher - then test predictions: `dmml` (teacher, Table 1), `dmml_student`
(distilled student, Table 2) and `dmml_student_no_kd` (the student without distillation, ablation only).

Built when `methods` lists `dmml`/`dmml_student`, or by the targets `dmml` (both methods' rows in the same
tables, with the extra magnifications) and `dmml_distillation` (student with vs without distillation).
One job per cohort and stage runs every fold; per-epoch progress files let a killed job resume.
"""


for _stage in layout.DMML_STAGES:

    rule:
        name:
            f"dmml_{_stage}"
        input:
            unpack(lambda wc, stage=_stage: STUDY.dmml_inputs(wc.cohort, stage)),
        output:
            per_fold(lambda k, stage=_stage: layout.dmml_checkpoint("{cohort}", k, stage)),
        params:
            stage=_stage,
            dmml=config["dmml"],
            seed=config["training"]["seed"],
            selection=config["selection"],
            device=config["training"]["device"],
        log:
            f"logs/train/{{cohort}}/dmml/{_stage}.log",
        benchmark:
            f"benchmarks/rules/train/{{cohort}}/dmml/{_stage}.tsv"
        conda:
            "../../envs/mustsurv.yaml"
        threads: config["training"]["threads"]
        resources:
            mem_mb=STUDY.training_mem_mb("dmml"),
            runtime=60 * len(FOLDS),
            gpu=config["training"]["gpu"],
        script:
            "../scripts/dmml_train.py"


rule dmml_predict:
    input:
        unpack(lambda wc: STUDY.dmml_inputs(wc.cohort)),
        models=lambda wc: [layout.dmml_checkpoint(wc.cohort, k, DMML_RUNS[wc.dmml_run]) for k in FOLDS],
    output:
        predictions=per_fold(lambda k: layout.predictions("{cohort}", "{dmml_run}", k)),
    wildcard_constraints:
        dmml_run="|".join(DMML_RUNS),
    params:
        dmml=config["dmml"],
        seed=config["training"]["seed"],
        selection=config["selection"],
        device=config["training"]["device"],
    log:
        "logs/evaluate/{cohort}/{dmml_run}.log",
    benchmark:
        "benchmarks/rules/evaluate/{cohort}/{dmml_run}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=STUDY.training_mem_mb("dmml"),
        runtime=30,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/dmml_predict.py"


rule dmml_distillation_table:
    input:
        [p for runs in STUDY.dmml_distillation_inputs().values() for paths in runs.values() for p in paths],
    output:
        table=report(layout.ablation_table("dmml_distillation"), caption="../report/dmml_distillation.rst",
                     category="Ablations"),
    params:
        runs=STUDY.dmml_distillation_inputs(),
        cohorts=STUDY.paired_cohorts,
    log:
        "logs/report/ablation_dmml_distillation.log",
    benchmark:
        "benchmarks/rules/report/ablation_dmml_distillation.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_dmml_distillation.py"


rule dmml:
    input:
        STUDY.all_targets(),


rule dmml_distillation:
    input:
        layout.ablation_table("dmml_distillation"),
