"""Defaults live only in the schema: every code default that mirrors a config key agrees with the schema's
``default``, and a loaded config holds every key the code reads.

The schema blocks are compared with dataclass fields and ``inspect.signature`` defaults by name (a schema key
and the parameter it sets share their name unless ``rename`` says otherwise), so renaming a key in both the
schema and the code keeps the pairs matched. Only names present on both sides are compared; a code default
for a schema key that has no schema default fails too.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from mustsurv.config import (
    SCHEMA,
    ConfigError,
    fill_defaults,
    load_config,
    merge_config,
)
from mustsurv.demo.plan import DemoSettings
from mustsurv.slides.embed import EmbedParams
from mustsurv.slides.tiling import TileParams
from mustsurv.slides.tissue import SegmentParams

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml",
           *sorted((REPO / "config" / "examples").glob("*.yaml"))]
MINIMAL = {"cohorts": {"X": {"demo": {"seed": 3}}}}
NO_DEFAULT = object()


def schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA.read_text())


def node_ref_parts(ref: str) -> list[str]:
    assert ref.startswith("#/"), ref
    return ref[2:].split("/")


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its local ``$ref`` (``#/$defs/...``) followed."""
    while "$ref" in node:
        target = doc
        for part in node_ref_parts(node["$ref"]):
            target = target[part]
        node = target
    return node


def block(*keys: str) -> dict[str, Any]:
    """The schema of config block ``keys`` (``"*"`` = an ``additionalProperties`` entry, e.g. a cohort)."""
    doc = schema()
    node = doc
    for key in keys:
        node = resolve(doc, node)
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return resolve(doc, node)


def schema_defaults(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> schema default (``NO_DEFAULT`` when it has none) of a block's leaves; nested object
    properties are flattened (``effects.shared``)."""
    out: dict[str, Any] = {}
    for key, sub in node.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            out.update(schema_defaults(sub, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = sub.get("default", NO_DEFAULT)
    return out


def field_defaults(cls) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def parameter_defaults(fn: Callable) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def disagreements(schema_block: dict[str, Any], code: dict[str, Any], rename: dict[str, str] | None = None,
                  ) -> tuple[list[str], int]:
    """(problems, number of keys compared) between a schema block and code defaults."""
    rename = rename or {}
    problems, compared = [], 0
    for key, default in schema_defaults(schema_block).items():
        name = rename.get(key, key)
        if name not in code:
            continue
        compared += 1
        if default is NO_DEFAULT:
            problems.append(f"{key}: code default {code[name]!r} but the schema has no default")
        elif type(default) is bool or type(code[name]) is bool:
            if default is not code[name]:
                problems.append(f"{key}: schema {default!r} != code {code[name]!r}")
        elif default != code[name]:
            problems.append(f"{key}: schema {default!r} != code {code[name]!r}")
    return problems, compared


def fields_outside(schema_block: dict[str, Any], cls, rename: dict[str, str]) -> list[str]:
    """Fields of ``cls`` that no key of the block sets (a from_config class must read all of them)."""
    keys = {rename.get(k, k) for k in schema_defaults(schema_block)}
    return [f.name for f in dataclasses.fields(cls) if f.name not in keys]


DEMO_RENAME = {"effects.shared": "effect_shared", "effects.pathology": "effect_pathology",
               "effects.genomics": "effect_genomics"}


def _pairs():
    """(id, schema block keys, code defaults thunk, rename, whole): ``whole`` = every field of the class is a
    key of the block (the class is built from that block by ``from_config``)."""
    from mustsurv.cohort.splits import build_folds
    from mustsurv.models.must import MUST
    from mustsurv.omics.matrices import read_rna
    from mustsurv.omics.survival import read_clinical
    from mustsurv.slides.embed import embed_batch
    from mustsurv.slides.reader import Slide, open_slide
    from mustsurv.slides.steps import (
        coords_step,
        patch_batch,
        summary_step,
        tile_batch,
        tissue_step,
    )
    from mustsurv.train import must as must_train
    from mustsurv.train.selection import Selection
    from mustsurv.train.trainer import OptimConfig

    def default_cfg(fn):
        return lambda: dataclasses.asdict(parameter_defaults(fn)["cfg"])

    pairs = [
        ("DemoSettings", ("cohorts", "*", "demo"), lambda: field_defaults(DemoSettings), DEMO_RENAME, DemoSettings),
        ("SegmentParams", ("slides", "segmentation"), lambda: field_defaults(SegmentParams), {}, SegmentParams),
        ("TileParams", ("slides",), lambda: field_defaults(TileParams), {}, TileParams),
        ("EmbedParams", ("slides",), lambda: field_defaults(EmbedParams), {}, EmbedParams),
        ("Selection", ("selection",), lambda: field_defaults(Selection), {}, Selection),
        # OptimConfig's own defaults are stage 2's and a baseline's (lr 2e-4); stage 1's default config is
        # train_stage1's `cfg` default (lr 1e-3)
        ("OptimConfig/must.stage2", ("must", "stage2"), lambda: field_defaults(OptimConfig), {}, None),
        ("OptimConfig/training", ("training",), lambda: field_defaults(OptimConfig), {}, None),
        ("train_stage1.cfg", ("must", "stage1"), default_cfg(must_train.train_stage1), {}, None),
        ("train_stage2.cfg", ("must", "stage2"), default_cfg(must_train.train_stage2), {}, None),
        ("train_stage3", ("must", "stage3"), lambda: parameter_defaults(must_train.train_stage3), {}, None),
        ("train_stage3/training", ("training",), lambda: parameter_defaults(must_train.train_stage3), {}, None),
        ("predict", ("must", "inference"), lambda: parameter_defaults(must_train.predict),
         {"ddim_steps": "steps"}, None),
        ("predict/training", ("training",), lambda: parameter_defaults(must_train.predict), {}, None),
        ("MUST.predict_risk", ("must", "inference"), lambda: parameter_defaults(MUST.predict_risk),
         {"ddim_steps": "steps"}, None),
        ("MUST", ("must", "model"), lambda: parameter_defaults(MUST.__init__), {}, None),
        ("MUST/cv", ("cv",), lambda: parameter_defaults(MUST.__init__), {}, None),
        ("embed_batch", ("slides",), lambda: parameter_defaults(embed_batch), {}, None),
        ("summary_step", ("slides",), lambda: parameter_defaults(summary_step), {}, None),
        ("read_rna", ("omics",), lambda: parameter_defaults(read_rna), {"rna_transform": "transform"}, None),
        ("read_clinical", ("cohorts", "*"), lambda: parameter_defaults(read_clinical), {"patient_ids": "rule"}, None),
        ("build_folds", ("cv",), lambda: parameter_defaults(build_folds), {}, None),
    ]
    from mustsurv.models.dmml.distillation import distillation_loss
    from mustsurv.models.dmml.student import DMMLStudent
    from mustsurv.models.dmml.teacher import DMMLTeacher

    pairs += [
        ("DMMLTeacher", ("dmml", "model"), lambda: parameter_defaults(DMMLTeacher.__init__), {}, None),
        ("DMMLStudent", ("dmml", "model"), lambda: parameter_defaults(DMMLStudent.__init__), {}, None),
        ("DMMLStudent/student", ("dmml", "student"), lambda: parameter_defaults(DMMLStudent.__init__), {}, None),
        ("distillation_loss", ("dmml", "distill_loss"), lambda: parameter_defaults(distillation_loss), {}, None),
    ]
    for name in ("teacher", "student_train", "distillation"):
        pairs.append((f"OptimConfig/dmml.{name}", ("dmml", name), lambda: field_defaults(OptimConfig), {}, None))
    for fn in (tissue_step, coords_step, patch_batch, tile_batch, open_slide, Slide.__init__):
        pairs.append((f"{fn.__qualname__}", ("slides",), lambda fn=fn: parameter_defaults(fn),
                      {"read_retries": "retries"}, None))
    for name in block("baselines")["properties"]:
        if "train" in block("baselines", name)["properties"]:  # the classical Cox baselines have no optimiser
            pairs.append((f"OptimConfig/baselines.{name}.train", ("baselines", name, "train"),
                          lambda: field_defaults(OptimConfig), {}, None))
    from mustsurv.models.registry import model_class

    for name in ("coxph_genomics", "coxph_pathology", "coxph_concat"):
        cls = model_class(name)
        pairs.append((f"{cls.__name__}/baselines.{name}.model", ("baselines", name, "model"),
                      lambda cls=cls: parameter_defaults(cls.__init__), {}, None))
    return pairs


PAIRS = _pairs()


@pytest.mark.parametrize("keys, code, rename, whole", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_code_defaults_agree_with_the_schema(keys, code, rename, whole):
    schema_block = block(*keys)
    problems, compared = disagreements(schema_block, code(), rename)
    assert compared > 0, f"no key of {'.'.join(keys)} matches a code default: the pair is stale"
    assert not problems, f"{'.'.join(keys)}: " + "; ".join(problems)
    if whole is not None:
        assert not fields_outside(schema_block, whole, rename), "fields without a config key"


def test_the_comparison_catches_a_disagreement():
    seg = copy.deepcopy(block("slides", "segmentation"))
    seg["properties"]["median_blur"]["default"] = 9
    del seg["properties"]["max_holes"]["default"]
    problems, _ = disagreements(seg, field_defaults(SegmentParams))
    assert problems == ["median_blur: schema 9 != code 7", "max_holes: code default 8 but the schema has no default"]


def _snakemake_validated(cfg: dict[str, Any]) -> dict[str, Any]:
    from snakemake.utils import validate

    cfg = copy.deepcopy(cfg)
    validate(cfg, str(SCHEMA))
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_load_config_fills_as_snakemake_validate_does(path):
    """Snakemake's validate fills the same defaults (inside `cohorts.<name>.demo` and nested blocks too)."""
    assert load_config(path) == _snakemake_validated(yaml.safe_load(path.read_text()))


def test_a_minimal_config_gets_every_default(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    cfg = load_config(path)
    assert cfg == _snakemake_validated(MINIMAL)
    demo = cfg["cohorts"]["X"]["demo"]
    assert DemoSettings.from_config(demo) == DemoSettings(seed=3)
    assert demo["effects"] == {"shared": 0.9, "pathology": 0.7, "genomics": 0.7}
    assert SegmentParams.from_config(cfg["slides"]["segmentation"]) == SegmentParams()
    assert TileParams.from_config(cfg["slides"]) == TileParams()
    assert EmbedParams.from_config(cfg["slides"]) == EmbedParams()


def test_load_config_holds_every_key_the_code_reads():
    from mustsurv.study.design import StudyDesign
    from mustsurv.train.trainer import OptimConfig

    cfg = load_config(REPO / "config" / "config.yaml")
    for name, cohort in cfg["cohorts"].items():
        DemoSettings.from_config(cohort["demo"])
        assert set(schema_defaults(block("cohorts", "*", "demo"))) <= {
            *cohort["demo"], *(f"effects.{k}" for k in cohort["demo"]["effects"])}
        assert StudyDesign(cfg).rna_transform(name) == "auto"
    SegmentParams.from_config(cfg["slides"]["segmentation"])
    TileParams.from_config(cfg["slides"])
    EmbedParams.from_config(cfg["slides"])
    for stage in ("stage1", "stage2"):
        OptimConfig(**cfg["must"][stage], seed=cfg["training"]["seed"])
    for stage in ("teacher", "student_train", "distillation"):
        OptimConfig(**cfg["dmml"][stage], seed=cfg["training"]["seed"])
    for name, baseline in cfg["baselines"].items():
        if "train" in block("baselines", name)["properties"]:
            OptimConfig(**baseline["train"], seed=cfg["training"]["seed"])
        else:  # classical Cox baselines: every model setting filled
            assert set(schema_defaults(block("baselines", name, "model"))) == set(baseline["model"]), name
    # every key with a schema default is present, in every block
    for keys in [("cv",), ("omics",), ("slides",), ("slides", "segmentation"), ("training",),
                 *(("must", b) for b in block("must")["properties"])]:
        node = cfg
        for key in keys:
            node = node[key]
        wanted = {k for k, d in schema_defaults(block(*keys)).items() if d is not NO_DEFAULT and "." not in k}
        assert wanted <= set(node), f"{'.'.join(keys)} lacks {sorted(wanted - set(node))}"


def test_overlays_merge_like_configfile(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({**MINIMAL, "cv": {"folds": 3, "seed": 7}}))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"cv": {"folds": 4}, "methods": ["must", "mlp"],
                                       "baselines": {"mlp": {"model": {}, "train": {"epochs": 2}}}}))
    cfg = load_config(base, [overlay, {"cohorts": {"X": {"demo": {"patients": 12}}}}])
    assert cfg["cv"] == {"folds": 4, "seed": 7, "n_bins": 4, "validation_fraction": 0.2, "group_by": "none"}
    assert cfg["methods"] == ["must", "mlp"]
    assert cfg["baselines"]["mlp"]["train"]["epochs"] == 2 and cfg["baselines"]["mlp"]["train"]["lr"] == 2e-4
    assert cfg["cohorts"]["X"]["demo"]["patients"] == 12 and cfg["cohorts"]["X"]["demo"]["seed"] == 3
    assert merge_config({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


def test_load_config_names_the_bad_key(tmp_path):
    bad = copy.deepcopy(MINIMAL)
    bad["cohorts"]["X"]["demo"]["patients"] = 3
    with pytest.raises(ConfigError, match=r"cohorts\.X\.demo\.patients"):
        fill_defaults(bad)


def test_an_unknown_key_is_named_with_the_nearest_valid_one():
    bad = copy.deepcopy(MINIMAL)
    bad["must"] = {"stage1": {"epoch": 3}}
    with pytest.raises(ConfigError, match=r"must\.stage1: .*'epoch' was unexpected.*`epoch`: did you mean `epochs`\?"):
        fill_defaults(bad)
    bad = copy.deepcopy(MINIMAL)
    bad["zzz"] = 1
    with pytest.raises(ConfigError, match=r"`zzz`: valid keys are .*cohorts"):
        fill_defaults(bad)

