"""``mustsurv doctor``: check a study before any job runs, one line per problem with its fix.

Checks, in order (a config that does not load stops there; every other check reports all it finds):

- ``config``: the schema and :func:`mustsurv.config.config_problems` (every file and folder named, a
  slide source per cohort, the ``patient_ids`` rule, the endpoint against the survival source);
- ``slides``: each cohort's slide list (sheet, glob, GDC manifest / sample sheet, ``only_dx``) and its
  files, and ``features_dir`` holding ``.h5`` files;
- ``slide``: a sample of each cohort's slides (first, middle, last by id) is opened, its MPP resolved, a
  region decoded and the read at ``slides.target_mpp`` planned (no upsampling);
- ``weights``: the encoder exists and its local weights file is set and present when it needs one;
- ``gpu``: a GPU is visible when ``training.gpu``, ``training.device: cuda`` or ``slides.device: cuda``
  asks for one;
- ``disk``: the features this workflow will write - slides x patches per slide (the sampled slides' whole
  area at ``target_mpp``, an upper bound as background is not subtracted) x encoder dimension x 4 bytes -
  against the free space of the working directory.

The config file is read as the whole configuration, as ``snakemake --configfile FILE
--replace-workflow-config`` reads it; relative paths are relative to ``--directory`` (default: here).
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_SLIDES = 3
"""Slides opened per cohort (first, middle and last by slide id)."""

FEATURE_BYTES = 4
"""Bytes per feature value (float32)."""


@dataclass(frozen=True)
class Problem:
    """One problem found.

    Attributes:
        check: the check that found it (``config``, ``slides``, ``slide``, ``weights``, ``gpu``, ``disk``).
        message: what is wrong and how to fix it, naming the config key or file.
    """

    check: str
    message: str

    def line(self) -> str:
        """The problem as one printed line.

        Returns:
            ``[check] message``.
        """
        return f"[{self.check}] {self.message}"


@dataclass
class Report:
    """What the checks found.

    Attributes:
        problems: the problems, in check order.
        notes: facts worth printing that are not problems (the disk estimate).
    """

    problems: list[Problem]
    notes: list[str]


def _gpu_visible() -> bool:
    """Whether torch sees a CUDA device (torch is imported only here)."""
    import torch

    return torch.cuda.is_available()


def _sample(ids: list[str], n: int) -> list[str]:
    """Up to ``n`` ids spread over the sorted list (first, middle, last for n = 3)."""
    ids = sorted(ids)
    if len(ids) <= n:
        return ids
    return sorted({ids[round(i * (len(ids) - 1) / (n - 1))] for i in range(n)}) if n > 1 else ids[:1]


def _slide_lists(config: dict[str, Any], problems: list[Problem]) -> dict[str, tuple[dict[str, str], str | None]]:
    """Each real cohort's ``{slide_id: path}`` and slide sheet (problems appended for unusable sources)."""
    from mustsurv.cohort.slides import list_slides
    from mustsurv.study.design import precomputed_features

    out = {}
    for name, block in config["cohorts"].items():
        if "demo" in block:
            continue
        where = f"cohorts.{name}"
        if "features_dir" in block and Path(block["features_dir"]).is_dir():
            try:
                precomputed_features(block["features_dir"])
            except FileNotFoundError as err:
                problems.append(Problem("slides", f"{where}.{err}"))
        if "slides" not in block:
            continue
        try:
            df = list_slides(block["slides"], block["patient_ids"], f"{where}.slides")
        except (ValueError, OSError) as err:
            problems.append(Problem("slides", str(err)))
            continue
        absent = [p for p in df["path"] if not Path(p).is_file()]
        if absent:
            problems.append(Problem("slides", f"{where}.slides: {len(absent)} of {len(df)} slide file(s) do not exist "
                                              f"(e.g. {absent[0]}); fix the paths in the slide list or remove them."))
        out[name] = ({s: p for s, p in zip(df["slide_id"], df["path"]) if Path(p).is_file()},
                     block["slides"].get("sheet"))
    return out


def _slide_sample(config: dict[str, Any], lists: dict[str, tuple[dict[str, str], str | None]], n: int,
                  problems: list[Problem]) -> dict[str, float]:
    """Open a sample of each cohort's slides; returns ``{cohort: mean patches per readable sampled slide}``."""
    from mustsurv.slides.reader import SlideError, open_slide

    s = config["slides"]
    per_cohort = {}
    for name, (slides, sheet) in lists.items():
        if "features_dir" in config["cohorts"][name]:
            continue  # its slides are not read by this workflow
        counts = []
        for sid in _sample(list(slides), n):
            try:
                with open_slide(slides[sid], sid, sheet, retries=0) as slide:
                    plan = slide.plan(s["target_mpp"], s["patch_size"], s["mpp_tolerance"])
                    side = min(plan.read_size, *slide.level_dimensions[plan.level])
                    slide.read_region(0, 0, plan.level, side, side)
                    width, height = slide.dimensions
                    counts.append(width * height / plan.patch_size_level0 ** 2)
            except (SlideError, OSError, ValueError) as err:
                problems.append(Problem("slide", f"cohorts.{name}: {err}"))
        if counts:
            per_cohort[name] = sum(counts) / len(counts)
    return per_cohort


def _weights(config: dict[str, Any], embeds: bool, problems: list[Problem]) -> int | None:
    """Check the encoder and its weights; returns its feature dimension (None for an unknown encoder)."""
    from mustsurv.slides.encoders import get_spec

    name = config["slides"]["encoder"]
    try:
        spec = get_spec(name)
    except KeyError as err:
        problems.append(Problem("weights", f"slides.encoder: {err.args[0]}"))
        return None
    if not embeds:
        return spec.dim
    path = (config["slides"]["encoder_weights"] or {}).get(name)
    if path and not Path(path).is_file():
        problems.append(Problem("weights", f"slides.encoder_weights.{name}: {path} does not exist; download the "
                                           f"weights and fix the path. {spec.weights_help}".rstrip()))
    elif not path and spec.requires_weights:
        problems.append(Problem("weights", f"slides.encoder_weights.{name}: encoder {name!r} needs its local weights "
                                           f"file and none is set. {spec.weights_help}".rstrip()))
    return spec.dim


def _gpu(config: dict[str, Any], gpu_visible: Callable[[], bool], problems: list[Problem]) -> None:
    """A GPU is visible when the config asks for one."""
    asks = [key for key, on in (("training.gpu", config["training"]["gpu"] > 0),
                                ("training.device", config["training"]["device"] == "cuda"),
                                ("slides.device", config["slides"]["device"] == "cuda")) if on]
    if asks and not gpu_visible():
        problems.append(Problem("gpu", f"{', '.join(asks)} ask(s) for a GPU but none is visible here "
                                       f"(torch.cuda.is_available() is False); run on a GPU node (check "
                                       f"CUDA_VISIBLE_DEVICES and the driver), or set training.gpu: 0, "
                                       f"training.device: cpu / auto and slides.device: auto."))


def _size(n: float) -> str:
    """A byte count with a unit (``1000 B``, ``1.5 MB``, ``2.31 GB``)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _disk(lists: dict[str, tuple[dict[str, str], str | None]], patches: dict[str, float], dim: int | None,
          directory: Path, free_bytes: Callable[[Path], int], report: Report) -> None:
    """Compare the features' estimated size with the free space of ``directory``."""
    if dim is None or not patches:
        return
    need = sum(len(lists[c][0]) * patches[c] * dim * FEATURE_BYTES for c in patches)
    free = free_bytes(directory)
    report.notes.append(f"features of {sum(len(lists[c][0]) for c in patches)} slide(s) need at most "
                        f"{_size(need)} ({dim}-d float32, whole slide area; tissue only is less); "
                        f"{_size(free)} free in {directory}")
    if need > free:
        report.problems.append(Problem("disk", f"the features need up to {_size(need)} but {directory} has "
                                               f"{_size(free)} free; free space, run in a larger "
                                               f"--directory, or precompute features elsewhere (features_dir)."))


def diagnose(configfile: str | os.PathLike, sample: int = SAMPLE_SLIDES,
             gpu_visible: Callable[[], bool] = _gpu_visible,
             free_bytes: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free) -> Report:
    """Run every check on a study config (paths relative to the current directory).

    Args:
        configfile: the study's YAML config (the whole configuration).
        sample: slides opened per cohort.
        gpu_visible: tells whether a GPU is visible (replaced in tests).
        free_bytes: free bytes of a folder (replaced in tests).

    Returns:
        The problems and notes.
    """
    import yaml

    from mustsurv.config import config_problems, load_config

    report = Report([], [])
    try:
        config = load_config(configfile)
    except (ValueError, OSError, yaml.YAMLError) as err:  # schema, YAML, unreadable file: nothing else to check
        report.problems.append(Problem("config", f"{configfile}: {err}"))
        return report
    report.problems += [Problem("config", m) for m in config_problems(config, check_files=True)]
    lists = _slide_lists(config, report.problems)
    patches = _slide_sample(config, lists, sample, report.problems)
    embeds = any("demo" in b or ("slides" in b and "features_dir" not in b) for b in config["cohorts"].values())
    dim = _weights(config, embeds, report.problems)
    _gpu(config, gpu_visible, report.problems)
    _disk(lists, patches, dim, Path.cwd(), free_bytes, report)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``doctor``'s options to its sub-parser.

    Args:
        parser: the ``doctor`` sub-command's parser.
    """
    parser.add_argument("--configfile", required=True, help="the study's config file (read as the whole config)")
    parser.add_argument("--directory", default=".", help="working directory the config's paths are relative to")
    parser.add_argument("--sample", type=int, default=SAMPLE_SLIDES, help="slides opened per cohort")


def run(args: argparse.Namespace) -> int:
    """Run ``mustsurv doctor``: print one line per problem, then a summary.

    Args:
        args: the parsed options (``configfile``, ``directory``, ``sample``).

    Returns:
        The exit code: 0 without problems, 1 otherwise.
    """
    configfile = Path(args.configfile).resolve()
    os.chdir(args.directory)
    report = diagnose(configfile, args.sample)
    for problem in report.problems:
        print(problem.line())
    for note in report.notes:
        print(f"[note] {note}")
    n = len(report.problems)
    print(f"{n} problem(s) found in {configfile}" if n else f"no problems found in {configfile}")
    return 1 if n else 0
