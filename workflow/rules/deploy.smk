"""Final models and portable bundles (one job per cohort and method), and external validation: a training
cohort's bundles predict another cohort in every scenario (`snakemake external`; not part of the default
run). Paths come from mustsurv.study.layout, the code from mustsurv.deploy."""


rule bundle:
    input:
        unpack(lambda wc: STUDY.bundle_inputs(wc.cohort, wc.method)),
    output:
        layout.bundle("{cohort}", "{method}"),
    wildcard_constraints:
        cohort="|".join(re.escape(c) for c in COHORTS),
        method="|".join(STUDY.methods),
    params:
        config=config,
        device=config["training"]["device"],
    log:
        "logs/deploy/{cohort}/{method}.log",
    benchmark:
        "benchmarks/rules/deploy/{cohort}/{method}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/deploy_bundle.py"


EXTERNAL_PAIR = dict(
    train="|".join(re.escape(c) for c in COHORTS) or "(?!)",
    test="|".join(re.escape(c) for c in STUDY.all_cohorts),
    method="|".join(STUDY.methods),
)


rule external_predict:
    input:
        unpack(lambda wc: STUDY.external_test_inputs(wc.test)),
        bundle=layout.bundle("{train}", "{method}"),
    output:
        layout.external_predictions("{train}", "{test}", "{method}"),
    wildcard_constraints:
        **EXTERNAL_PAIR,
    params:
        device=config["training"]["device"],
    log:
        "logs/external/{train}_to_{test}/{method}.log",
    benchmark:
        "benchmarks/rules/external/{train}_to_{test}/{method}.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=config["training"]["gpu"],
    script:
        "../scripts/external_predict.py"


EXTERNAL_FIGURES = [(m, s) for m in STUDY.deploy_methods for s in scenarios_of(m)]


rule external_report:
    input:
        unpack(lambda wc: {"truth": STUDY.external_test_inputs(wc.test).get("truth", [])}),
        predictions=lambda wc: [layout.external_predictions(wc.train, wc.test, m) for m in STUDY.deploy_methods],
        bundles=lambda wc: [layout.bundle(wc.train, m) for m in STUDY.deploy_methods],
    output:
        metrics=layout.external_metrics("{train}", "{test}"),
        summary=layout.external_summary("{train}", "{test}"),
        km=[layout.external_km("{train}", "{test}", m, s) for m, s in EXTERNAL_FIGURES],
    wildcard_constraints:
        train=EXTERNAL_PAIR["train"],
        test=EXTERNAL_PAIR["test"],
    params:
        methods=STUDY.deploy_methods,
        figures=EXTERNAL_FIGURES,
    log:
        "logs/external/{train}_to_{test}/report.log",
    benchmark:
        "benchmarks/rules/external/{train}_to_{test}/report.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/external_report.py"


rule external_table:
    input:
        [layout.external_summary(train, test) for train, test in STUDY.external_pairs],
    output:
        layout.study_table(layout.EXTERNAL_TABLE),
    log:
        "logs/external/table.log",
    benchmark:
        "benchmarks/rules/external/table.tsv"
    conda:
        "../../envs/mustsurv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/external_table.py"


rule external:
    input:
        STUDY.external_targets(),
