"""Genomics: RNA/CNV/MAF tables or an MCAT all_clean CSV -> per-patient family tokens (tokens.h5)."""


rule omics_tokens:
    input:
        unpack(lambda wc: STUDY.omics_inputs(wc.cohort)),
    output:
        layout.tokens("{cohort}"),
    params:
        rna_transform=lambda wc: STUDY.rna_transform(wc.cohort),
        patient_ids=lambda wc: STUDY.patient_id_rule(wc.cohort),
    log:
        "logs/omics/{cohort}/tokens.log",
    benchmark:
        "benchmarks/rules/omics/{cohort}/tokens.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/omics_tokens.py"
