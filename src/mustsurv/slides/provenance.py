"""Provenance of patch-feature files: which encoder, at which resolution, from which weights.

Every features ``.h5`` this workflow writes (:mod:`mustsurv.slides.embed`) carries, on the file and on
``coords``: ``encoder`` (registry name), ``embed_dim``, ``target_mpp`` (µm/px of the patches),
``patch_size`` (px at that MPP) and ``weights_sha256`` (SHA-256 of the weights file, or ``random-init``
for a seeded encoder). Third-party files carry less and nothing is invented for them:

- TRIDENT writes ``name``/``savetodir`` on ``features`` and, on ``coords``, ``patch_size``,
  ``patch_size_level0``, ``level0_magnification``, ``target_magnification`` and ``overlap``; the encoder
  is only in its folder name (``.../features_<encoder>/<slide>.h5``), which is read as such.
- CLAM writes ``features`` and ``coords`` with, at most, ``patch_size``/``patch_level`` on ``coords``.

:func:`read_provenance` reports what a file says (``None`` for a missing field); :func:`cohort_provenance`
checks that a cohort's files agree on every field they state (a disagreement is an error naming the files)
and warns once per field that some files do not state.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import h5py

log = logging.getLogger(__name__)

FIELDS: tuple[str, ...] = ("encoder", "dim", "mpp", "magnification", "patch_size", "weights_sha256")
"""Provenance fields, in report order. ``dim`` is always known (the ``features`` shape)."""

MPP_RTOL = 0.02  # patch MPPs within 2 % of each other are the same resolution
_TRIDENT_FOLDER = re.compile(r"^features_(.+)$")
_SKIPPED_STATUS = ("failed", "empty_mask")  # files without patches say nothing about the features


class ProvenanceError(ValueError):
    """Feature files of one cohort disagree on how they were made; the message names them and the fix."""


def _first(sources: list[dict[str, Any]], *keys: str) -> Any:
    """The first value of any of ``keys`` in the attribute dicts, as a plain Python value (None when absent)."""
    for attrs in sources:
        for key in keys:
            if key in attrs:
                value = attrs[key]
                value = value.item() if hasattr(value, "item") else value
                return value.decode() if isinstance(value, bytes) else value
    return None


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """Read what a features file says about its making.

    Args:
        path: a features ``.h5`` (this workflow's, TRIDENT's or CLAM's) with a ``features`` (N, D) dataset.

    Returns:
        ``{field: value or None}`` for :data:`FIELDS`, plus ``format`` (``mustsurv``, ``trident``,
        ``clam``), ``status`` (the file's status attribute, ``ok`` when absent), ``n_patches`` and
        ``missing`` (the fields the file does not state). The encoder of a TRIDENT file comes from its
        ``features_<encoder>`` folder.
    """
    with h5py.File(path, "r") as h5:
        sources = [dict(h5.attrs)]
        if "coords" in h5:
            sources.append(dict(h5["coords"].attrs))
        n, dim = h5["features"].shape
    if _first(sources, "embed_dim", "weights_sha256") is not None or _first(sources, "encoder") is not None:
        fmt = "mustsurv"
    elif _first(sources, "target_magnification", "level0_magnification") is not None:
        fmt = "trident"
    else:
        fmt = "clam"
    encoder = _first(sources, "encoder")
    if encoder is None and fmt == "trident":
        match = _TRIDENT_FOLDER.match(Path(path).parent.name)
        encoder = match.group(1) if match else None
    mpp = _first(sources, "target_mpp", "mpp")
    mag = _first(sources, "target_magnification")
    info: dict[str, Any] = {
        "encoder": None if encoder is None else str(encoder),
        "dim": int(dim),
        "mpp": None if mpp is None else float(mpp),
        "magnification": None if mag is None else float(mag),
        "patch_size": None if _first(sources, "patch_size") is None else int(_first(sources, "patch_size")),
        "weights_sha256": _first(sources, "weights_sha256"),
        "format": fmt,
        "status": str(_first(sources, "status") or "ok"),
        "n_patches": int(n),
    }
    # a resolution is stated by an MPP or a magnification; either one is enough
    stated = [f for f in FIELDS if info[f] is not None]
    resolution = {"mpp", "magnification"}
    info["missing"] = [f for f in FIELDS if info[f] is None and not (f in resolution and resolution & set(stated))]
    return info


def _same(field: str, a: Any, b: Any) -> bool:
    """Whether two stated values of a field agree (MPP within :data:`MPP_RTOL`)."""
    if field == "mpp":
        return abs(a - b) <= MPP_RTOL * max(abs(a), abs(b))
    return a == b


def cohort_provenance(features: dict[str, str | os.PathLike], cohort: str = "") -> dict[str, Any]:
    """Check that a cohort's feature files agree, and return their common provenance.

    Files without patches (status ``failed`` or ``empty_mask``) are not compared. For each field, the
    files that state it must agree; files that do not state it are reported in one warning per field.

    Args:
        features: ``{slide_id: features .h5}`` of the cohort (one magnification).
        cohort: the cohort's name, for the messages.

    Returns:
        ``{field: common value or None}`` for :data:`FIELDS`, plus ``format`` (the files' formats, sorted
        and joined by ``+``), ``n_files`` (files compared) and ``missing`` (``{field: number of files
        not stating it}``) - what a model bundle records about its inputs.

    Raises:
        ProvenanceError: two files disagree on a field; the message names the field, the values and up
            to three files with each.
    """
    infos = {slide: read_provenance(path) for slide, path in sorted(features.items())}
    used = {s: i for s, i in infos.items() if i["status"] not in _SKIPPED_STATUS and i["n_patches"] > 0}
    where = f"cohort {cohort}: " if cohort else ""
    common: dict[str, Any] = {}
    missing: dict[str, int] = {}
    for field in FIELDS:
        groups: list[tuple[Any, list[str]]] = []
        for slide, info in used.items():
            value = info[field]
            if value is None:
                continue
            for ref, members in groups:
                if _same(field, ref, value):
                    members.append(str(features[slide]))
                    break
            else:
                groups.append((value, [str(features[slide])]))
        if len(groups) > 1:
            listing = "; ".join(f"{field}={value!r}: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''} "
                                f"({len(files)} file(s))" for value, files in groups)
            raise ProvenanceError(
                f"{where}feature files disagree on {field}: {listing}. One cohort's features must come from one "
                f"encoder, weights, patch size and magnification; re-extract the odd files or point "
                f"`features_dir` at one extraction."
            )
        common[field] = groups[0][0] if groups else None
        silent = [s for s, i in used.items() if field in i["missing"]]
        if silent:
            missing[field] = len(silent)
            log.warning("%s%d of %d feature file(s) do not record %s (e.g. %s); it is left unknown, not guessed",
                        where, len(silent), len(used), field, features[silent[0]])
    common["format"] = "+".join(sorted({i["format"] for i in used.values()}))
    common["n_files"] = len(used)
    common["missing"] = missing
    return common
