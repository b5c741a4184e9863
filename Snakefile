"""mustsurv: multimodal survival prediction that stays accurate when a modality is missing (MUST)."""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"


rule all:
    default_target: True
    input:
        all_targets(),
