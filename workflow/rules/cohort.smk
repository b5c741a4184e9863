"""Cohort assembly: patient table (survival + modalities) and patient-level CV folds with time bins."""


rule cohort_table:
    input:
        unpack(lambda wc: STUDY.cohort_table_inputs(wc.cohort)),
    output:
        layout.cohort_table("{cohort}"),
    params:
        patient_ids=lambda wc: STUDY.patient_id_rule(wc.cohort),
        endpoint=lambda wc: STUDY.endpoint(wc.cohort),
    log:
        "logs/cohort/{cohort}/table.log",
    benchmark:
        "benchmarks/rules/cohort/{cohort}/table.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/cohort_table.py"


rule cohort_splits:
    input:
        unpack(lambda wc: STUDY.split_inputs(wc.cohort)),
    output:
        layout.folds("{cohort}", FOLDS),
    params:
        folds=config["cv"]["folds"],
        seed=config["cv"]["seed"],
        n_bins=config["cv"]["n_bins"],
        validation_fraction=config["cv"]["validation_fraction"],
        splits_dir=lambda wc: config["cohorts"][wc.cohort].get("splits_dir"),
        patient_ids=lambda wc: STUDY.patient_id_rule(wc.cohort),
        group_by=config["cv"]["group_by"],
    log:
        "logs/cohort/{cohort}/splits.log",
    benchmark:
        "benchmarks/rules/cohort/{cohort}/splits.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/cohort_splits.py"
