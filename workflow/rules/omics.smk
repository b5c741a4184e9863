"""Genomics: RNA/CNV/MAF tables or an MCAT all_clean CSV -> per-patient family tokens (tokens.h5)."""


rule omics_tokens:
    input:
        unpack(lambda wc: omics_inputs(wc.cohort)),
    output:
        tokens_path("{cohort}"),
    params:
        rna_transform=lambda wc: rna_transform_of(config, wc.cohort),
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
