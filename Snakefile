"""mustsurv: multimodal survival prediction that stays accurate when a modality is missing (MUST)."""

from snakemake.utils import min_version, validate

from mustsurv.config import fill_defaults

min_version("9.0")


configfile: "config/config.yaml"


fill_defaults(config)  # a message naming the key (and the nearest valid one for an unknown key)
validate(config, "config/schema/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/omics.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/slides.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/dmml.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/heatmaps.smk"
include: "workflow/rules/deploy.smk"


rule all:
    default_target: True
    input:
        STUDY.all_targets(),
