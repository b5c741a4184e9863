"""Loading the workflow configuration, and checks of it that a JSON schema cannot express.

The schema (``config/schema/config.schema.yaml``) validates types and is the only home of the defaults:
:func:`load_config` (benchmarks, tests, command-line tools) and Snakemake's ``validate`` (the Snakefile)
fill every default it gives, so code reads ``block["key"]`` and never repeats a default. Defaults are filled
inside nested objects and inside ``additionalProperties`` / ``patternProperties`` blocks (e.g. each
``cohorts.<name>.demo``) wherever the enclosing object exists or has a default itself.

:func:`check_config` checks the meaning (:func:`config_problems` lists every problem): a cohort is
either ``demo`` or real files, a real cohort has survival and a modality, and every file it names exists.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Self

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from mustsurv.barcodes import check_rule
from mustsurv.study.design import OMICS_KEYS
from mustsurv.study.vocabulary import SLIDE_SOURCES

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "config.schema.yaml"

SLIDE_FILE_KEYS = ("sheet", "gdc_manifest", "gdc_sample_sheet")
"""Slide sources that are files (checked to exist)."""

REAL_KEYS = ("slides", "clinical", "rna", "cnv", "maf", "mcat_csv", "gene_families", "splits_dir", "features_dir")


class ConfigError(ValueError):
    """A configuration problem; the message names the key and the fix."""


class FromConfig:
    """Mixin of a settings dataclass whose fields are keys of one config block."""

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> Self:
        """Build the dataclass from every field of a schema-filled config block.

        Args:
            block: the config block; keys that are not fields of the dataclass are ignored.

        Returns:
            The settings instance.
        """
        return cls(**{f.name: block[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _filling_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Build a draft 2020-12 validator that fills schema defaults while validating.

    Like Snakemake's ``validate``, it sets each property's schema ``default`` before validating the object's
    properties (so nested defaults are filled too); it inserts a copy of the default, never the schema's own
    object.

    Args:
        schema: the loaded JSON schema.

    Returns:
        The validator.
    """
    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if validator.is_type(instance, "object"):
            for name, sub in props.items():
                if isinstance(sub, Mapping) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, subschema)

    return validators.extend(Draft202012Validator, {"properties": properties})(schema)


def fill_defaults(config: dict[str, Any], schema: str | Path = SCHEMA) -> dict[str, Any]:
    """Validate ``config`` against the schema, filling every schema default in place.

    Args:
        config: the configuration mapping; modified in place.
        schema: path of the YAML JSON schema.

    Returns:
        ``config`` itself.

    Raises:
        ConfigError: the config does not validate; the message names the offending key.
    """
    schema_doc = yaml.safe_load(Path(schema).read_text())
    error = best_match(_filling_validator(schema_doc).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        alternatives = "; ".join(sub.message for sub in error.context or ())  # anyOf/oneOf: what each branch wants
        raise ConfigError(f"{where}: {error.message}" + (f" ({alternatives})" if alternatives else "")
                          + _unknown_key_hint(error))
    return config


def _unknown_key_hint(error) -> str:
    """For an unknown key (``additionalProperties``), the nearest valid key(s) of its block, else ``""``."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, Mapping):
        return ""
    valid = sorted(error.schema.get("properties", {}))
    hints = []
    for key in sorted(set(error.instance) - set(valid)):
        if not isinstance(key, str):
            continue
        close = difflib.get_close_matches(key, valid, n=1)
        hints.append(f"`{key}`: did you mean `{close[0]}`?" if close else f"`{key}`: valid keys are {', '.join(valid)}")
    return f" ({'; '.join(hints)}; see config/README.md)" if hints else ""


def merge_config(config: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` into ``config`` in place as Snakemake merges a ``--configfile``.

    Mappings are merged key by key, recursively; any other value, lists included, replaces the old one.

    Args:
        config: the configuration to update.
        overlay: the values that win.

    Returns:
        ``config`` itself.
    """
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), Mapping):
            merge_config(config[key], value)
        else:
            config[key] = copy.deepcopy(value)
    return config


def _read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file as a mapping (empty file: ``{}``); ConfigError when it is not a mapping."""
    data = yaml.safe_load(Path(path).read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of keys, not {type(data).__name__}")
    return data


def load_config(path: str | Path, overlays: Iterable[str | Path | Mapping[str, Any]] = (),
                schema: str | Path = SCHEMA) -> dict[str, Any]:
    """Load a YAML config with overlays, validated against the schema and with every default filled.

    Args:
        path: the base YAML config file.
        overlays: YAML files or mappings merged in as Snakemake's ``--configfile`` does; later ones win.
        schema: path of the YAML JSON schema.

    Returns:
        The merged, validated and default-filled config.

    Raises:
        ConfigError: a file is not a mapping or the config does not validate; the message names the key.
    """
    config = _read_yaml(path)
    for overlay in overlays:
        merge_config(config, overlay if isinstance(overlay, Mapping) else _read_yaml(overlay))
    return fill_defaults(config, schema)


def _paths_of(block: dict[str, Any]) -> list[tuple[str, str]]:
    """List the ``(key, path)`` pairs of the input files a real cohort block names."""
    out = []
    for key in ("clinical", "rna", "cnv", "mcat_csv", "gene_families"):
        if key in block:
            out.append((key, block[key]))
    for i, p in enumerate(block.get("maf", [])):
        out.append((f"maf[{i}]", p))
    for key in SLIDE_FILE_KEYS:
        if key in block.get("slides", {}):
            out.append((f"slides.{key}", block["slides"][key]))
    return out


def config_problems(config: dict[str, Any], check_files: bool = True) -> list[str]:
    """Every problem of a schema-filled config beyond what the schema expresses.

    A cohort is either ``demo`` or real files, a real cohort has survival and a modality, its slide source
    and ``patient_ids`` rule are well formed, its endpoint exists in its survival table's format, and (with
    ``check_files``) every file or folder it names exists.

    Args:
        config: the schema-filled configuration.
        check_files: also check that named files, ``features_dir`` and ``splits_dir`` exist.

    Returns:
        One message per problem, each naming the key (``cohorts.<name>...``) and the fix; empty when the
        config is usable.
    """
    out = []
    if "selection" in config and config["selection"]["mode"] == "validation" and not config["cv"]["validation_fraction"]:
        out.append("selection.mode: validation needs validation patients; set cv.validation_fraction > 0 "
                   "(e.g. 0.2) or selection.mode: last_epoch.")
    for name, block in config["cohorts"].items():
        out += _cohort_problems(f"cohorts.{name}", block, config, check_files)
    out += _deploy_problems(config)
    return out


def _cohort_problems(where: str, block: dict[str, Any], config: dict[str, Any], check_files: bool) -> Iterable[str]:
    """The problems of one cohort block (see :func:`config_problems`)."""
    if "demo" in block:
        extra = [k for k in REAL_KEYS if k in block]
        if extra:
            yield (f"{where}: a demo cohort is generated by the workflow and cannot also name files "
                   f"({', '.join(extra)}); remove `demo:` or the file keys.")
        if block.get("endpoint") not in (None, "OS"):  # demo cohorts have overall survival only
            yield f"{where}.endpoint: a demo cohort has overall survival only; remove the key or set it to OS."
        return
    if "clinical" not in block and "mcat_csv" not in block:
        yield (f"{where}: no survival table; set `{where}.clinical` (TCGA-CDR, cBioPortal or MCAT style) "
               f"or `{where}.mcat_csv`, or make it a demo cohort with `{where}.demo.seed`.")
    if "clinical" not in block and "mcat_csv" in block and block.get("endpoint") not in (None, "OS"):
        yield (f"{where}.endpoint: {block['endpoint']} needs a `clinical` table (TCGA-CDR or cBioPortal); an MCAT "
               f"all_clean CSV carries overall survival only.")
    try:
        if "patient_ids" in block:
            check_rule(block["patient_ids"])
    except ValueError as err:
        yield f"{where}.{err}"
    slides = block.get("slides", {})
    given = [k for k in SLIDE_SOURCES if k in slides]
    if slides and len(given) != 1:
        yield f"{where}.slides: give exactly one of {', '.join(f'`{k}`' for k in SLIDE_SOURCES)} (got {given or 'none'})."
    if "gdc_dir" in slides and not any(k in slides for k in ("gdc_manifest", "gdc_sample_sheet")):
        yield f"{where}.slides.gdc_dir: only used with `gdc_manifest` or `gdc_sample_sheet`; remove it."
    has_p = bool(slides) or "features_dir" in block
    if "features_dir" in block and check_files and not Path(block["features_dir"]).is_dir():
        yield (f"{where}.features_dir: folder {block['features_dir']!r} does not exist; point it at the folder "
               f"of precomputed TRIDENT/CLAM feature .h5 files (one per slide, named <slide_id>.h5).")
    has_g = any(k in block for k in OMICS_KEYS)
    if not (has_p or has_g):
        yield f"{where}: no modality; give `slides` (or `features_dir`) and/or omics (`rna`, `cnv`, `maf`, `mcat_csv`)."
    if has_g and "gene_families" not in block:
        yield f"{where}.gene_families: omics need the six-family gene CSV (MCAT signatures.csv layout)."
    if "mcat_csv" in block and any(k in block for k in ("rna", "cnv", "maf")):
        yield f"{where}: give either `mcat_csv` or separate `rna`/`cnv`/`maf` tables, not both."
    if "splits_dir" in block and check_files:
        folds = config["cv"]["folds"]
        absent = [f"splits_{k}.csv" for k in range(folds)
                  if not (Path(block["splits_dir"]) / f"splits_{k}.csv").is_file()]
        if absent:
            yield (f"{where}.splits_dir: {block['splits_dir']!r} lacks {absent} (cv.folds = {folds}); "
                   f"fix the path or remove the key to use the workflow's own stratified splits.")
    if check_files:
        for key, path in _paths_of(block):
            if not Path(path).exists():
                yield f"{where}.{key}: file {path!r} does not exist; fix the path in the config."


def check_config(config: dict[str, Any], check_files: bool = True) -> None:
    """Check the meaning of a schema-filled config, beyond what the schema expresses (:func:`config_problems`).

    Args:
        config: the schema-filled configuration.
        check_files: also check that named files, ``features_dir`` and ``splits_dir`` exist.

    Raises:
        ConfigError: naming the first offending key (``cohorts.<name>...``) and the fix; the function
            returns silently when the config is usable.
    """
    problems = config_problems(config, check_files)
    if problems:
        raise ConfigError(problems[0])


def _deploy_problems(config: dict[str, Any]) -> Iterable[str]:
    """Check ``like``, ``role``, ``deploy`` and ``external``: the keys of the final models and external validation.

    Args:
        config: the schema-filled configuration.

    Yields:
        One message per problem, naming the offending key and the fix.
    """
    cohorts = config["cohorts"]
    if cohorts and all(block.get("role") == "external" for block in cohorts.values()):
        yield "cohorts: every cohort has role external; at least one must be a study cohort (role: study)."
    for name, block in cohorts.items():
        like = block["demo"].get("like") if "demo" in block else None
        if like is None:
            continue
        if like == name or like not in cohorts or "demo" not in cohorts[like] or cohorts[like]["demo"].get("like") is not None:
            yield f"cohorts.{name}.demo.like: {like!r} must name another demo cohort that has no `like` itself."
            continue
        if cohorts[like]["demo"].get("seed") == block["demo"].get("seed"):
            yield (f"cohorts.{name}.demo.seed: equals the seed of {like} (its `like`); give it another seed "
                   f"so that it draws new patients.")
    unknown = [m for m in config.get("deploy", {}).get("methods", ()) if m not in config.get("methods", ())]
    if unknown:
        yield f"deploy.methods: {unknown} are not in `methods`; add them there or remove them."
    for i, pair in enumerate(config.get("external", ())):
        where = f"external[{i}]"
        absent = [key for key in ("train", "test") if pair[key] not in cohorts]
        for key in absent:
            yield f"{where}.{key}: no cohort {pair[key]!r}; name one of {', '.join(cohorts)}."
        if absent:
            continue
        if cohorts[pair["train"]].get("role") == "external":
            yield (f"{where}.train: {pair['train']} has role external; the training cohort of a pair must be "
                   f"a study cohort (its folds choose the final models' epochs).")
        if pair["train"] == pair["test"]:
            yield f"{where}: train and test are both {pair['train']}; external validation needs another cohort."


PAPER_CONFIG = SCHEMA.parents[1] / "paper.yaml"


def must_config_label(must: Mapping[str, Any]) -> str:
    """Name the MUST configuration a run used, so tables can say which settings produced a row.

    Args:
        must: the run's schema-filled ``must`` block.

    Returns:
        ``paper`` when it equals ``config/paper.yaml``'s (schema-filled), else ``project-<hash>`` (the first
        8 hex digits of a SHA-256 of the block).
    """
    if PAPER_CONFIG.is_file() and load_config(PAPER_CONFIG)["must"] == dict(must):
        return "paper"
    digest = hashlib.sha256(json.dumps(must, sort_keys=True, default=str).encode()).hexdigest()
    return f"project-{digest[:8]}"
