"""The portable model bundle: one file that scores new patients without the study's results.

``results/cohorts/{cohort}/bundles/{method}.mustsurv`` is a ``torch.save``'d dict of tensors and plain
Python values only (read back with ``weights_only=True``, so loading it runs no pickled code):

* ``format`` (``"mustsurv-bundle"``), ``format_version`` (:data:`FORMAT_VERSION`), ``package_version``;
* ``method``, ``cohort``, ``kind`` (``final``: one model trained on every patient of the cohort;
  ``ensemble``: the cross-validation fold models, risks averaged), ``scenarios`` the method predicts;
* ``members``: per model, its registry ``name``, constructor ``kwargs``, ``state_dict``, the fitted genomic
  scaler (:class:`~mustsurv.cohort.store.FoldScaler` state, the training means impute missing values) and its
  ``bin_edges``;
* ``bin_edges``: the K + 1 edges the bundle reports survival at (the final model's, or the edges of all the
  cohort's patients for an ensemble);
* ``genomics``: ``family_names``, ``features`` (per family its feature names ``{GENE}_{type}``) and the
  ``rna_transform`` applied in training (None without genomics);
* ``encoder``: ``name``, ``dim``, ``target_mpp``, ``patch_size`` of the patch features and their ``provenance``
  (the cohort's ``slides/provenance.json``: encoder, dimension, MPP, patch size, weights hash; None without
  pathology);
* ``cutoffs``: per scenario the training patients' ``median`` and ``tertiles`` of the risk;
* ``training``: ``salt`` and ``patient_hashes`` (sorted SHA-256 of salt + patient id, so membership can be
  checked without storing ids), ``n_patients``, ``time`` and ``event`` of the training patients (no ids; the
  censoring distribution of the external metrics), ``epochs`` (what the final model trained for);
* ``inference``: DDIM ``n_samples``, ``ddim_steps``, ``batch_size`` and ``seed``;
* ``config``: the configuration the bundle was trained with.
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mustsurv import __version__
from mustsurv.cohort.store import FoldScaler
from mustsurv.io import atomic_path
from mustsurv.models.registry import build_model

FORMAT = "mustsurv-bundle"
FORMAT_VERSION = 1
"""The bundle layout this package writes and the newest it reads."""
KINDS = ("final", "ensemble")
REQUIRED = ("format", "format_version", "package_version", "method", "cohort", "kind", "scenarios", "members",
            "bin_edges", "genomics", "encoder", "cutoffs", "training", "inference", "config")


class BundleError(ValueError):
    """A bundle that cannot be read or does not fit the new patients; the message names the file and the fix."""


def hash_patient(salt: str, patient_id: str) -> str:
    """The salted SHA-256 of a patient id.

    Args:
        salt: the bundle's salt (hex).
        patient_id: the patient's id.

    Returns:
        The hex digest.
    """
    return hashlib.sha256(f"{salt}:{patient_id}".encode()).hexdigest()


def training_record(patients: Iterable[str], time: Iterable[float], event: Iterable[int],
                    epochs: dict[str, Any]) -> dict[str, Any]:
    """The ``training`` entry of a bundle: salted id hashes and outcomes of the patients a model was fit on.

    Args:
        patients: the training patient ids.
        time: their times (months), same order.
        event: their events, same order.
        epochs: what the model trained for (stage -> epochs or steps).

    Returns:
        ``salt``, ``patient_hashes`` (sorted), ``n_patients``, ``time``, ``event``, ``epochs``.
    """
    salt = secrets.token_hex(16)
    ids = list(patients)
    return {"salt": salt, "patient_hashes": sorted(hash_patient(salt, p) for p in ids), "n_patients": len(ids),
            "time": [float(t) for t in time], "event": [int(e) for e in event], "epochs": epochs}


@dataclass
class Member:
    """One model of a bundle, ready to predict.

    Attributes:
        model: the model in eval mode.
        scaler: its genomic scaler (None when the cohort had no genomics).
        bin_edges: the K + 1 edges of its time bins.
    """

    model: nn.Module
    scaler: FoldScaler | None
    bin_edges: list[float]


@dataclass
class Bundle:
    """A loaded, checked bundle.

    Attributes:
        path: the file it was read from.
        data: the stored dict (layout in the module docstring).
        members: its models, rebuilt.
        hashes: the training patients' salted hashes.
    """

    path: Path
    data: dict[str, Any]
    members: list[Member]
    hashes: frozenset[str] = field(default_factory=frozenset)

    @property
    def method(self) -> str:
        """The method's registry name."""
        return self.data["method"]

    @property
    def scenarios(self) -> list[str]:
        """The scenarios the method predicts."""
        return list(self.data["scenarios"])

    def is_training_patient(self, patient_id: str) -> bool:
        """Whether a patient id is one of the training patients (by its salted hash).

        Args:
            patient_id: the id.

        Returns:
            True when the hash is in the bundle's set.
        """
        return hash_patient(self.data["training"]["salt"], patient_id) in self.hashes


def member_record(name: str, kwargs: dict[str, Any], model: nn.Module, scaler: FoldScaler | None,
                  bin_edges: list[float]) -> dict[str, Any]:
    """One model as a bundle stores it.

    Args:
        name: registry name.
        kwargs: constructor arguments.
        model: the trained model.
        scaler: its genomic scaler, or None.
        bin_edges: its K + 1 bin edges.

    Returns:
        ``name``, ``kwargs``, ``state_dict`` (on the CPU), ``scaler``, ``bin_edges``.
    """
    state = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    return {"name": name, "kwargs": kwargs, "state_dict": state,
            "scaler": None if scaler is None else scaler.state_dict(), "bin_edges": [float(e) for e in bin_edges]}


def stamped(data: dict[str, Any]) -> dict[str, Any]:
    """A bundle's entries with the format, its version and the package version added.

    Args:
        data: every entry of the module docstring but the three stamps.

    Returns:
        A new dict.
    """
    return {**data, "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__}


def write_bundle(path: str | Path, data: dict[str, Any]) -> None:
    """Write a bundle atomically, stamping the format, its version and the package version.

    Args:
        path: the ``.mustsurv`` file.
        data: every entry of the module docstring but the three stamps.

    Raises:
        ValueError: an entry is missing or ``kind`` is unknown.
    """
    data = stamped(data)
    missing = [k for k in REQUIRED if k not in data]
    if missing or data["kind"] not in KINDS:
        raise ValueError(f"bundle for {path} lacks {missing} or has an unknown kind {data.get('kind')!r}")
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_bundle(path: str | Path, device: torch.device | str = "cpu") -> Bundle:
    """Read a bundle and check it; rebuild its models.

    Args:
        path: the ``.mustsurv`` file.
        device: where its models go.

    Returns:
        The bundle.

    Raises:
        BundleError: the file is missing or unreadable, not a mustsurv bundle, of a newer format, lacks an entry,
            or a model does not match its stored weights; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle {path} does not exist; build it with `snakemake {path}` or pass another file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise BundleError(f"{path} is not a readable mustsurv bundle ({type(exc).__name__}: {exc}); rebuild it with "
                          f"the workflow (`snakemake {path}`)") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{path} is not a mustsurv bundle (no format {FORMAT!r}); pass a .mustsurv file written by "
                          f"the workflow's bundle rule")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BundleError(f"{path} has bundle format {version!r} (written by mustsurv {data.get('package_version')}); "
                          f"this mustsurv {__version__} reads formats up to {FORMAT_VERSION}: upgrade mustsurv")
    return open_bundle(data, path, device)


def open_bundle(data: dict[str, Any], path: str | Path, device: torch.device | str = "cpu") -> Bundle:
    """Check a bundle's entries and rebuild its models (:func:`load_bundle` after reading the file).

    Args:
        data: the stored dict.
        path: where it comes from (for messages).
        device: where its models go.

    Returns:
        The bundle.

    Raises:
        BundleError: an entry is missing or a model does not match its stored weights.
    """
    path = Path(path)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise BundleError(f"{path} lacks {missing}; it is damaged or incomplete, rebuild it")
    members = []
    for i, rec in enumerate(data["members"]):
        try:
            model = build_model(rec["name"], **rec["kwargs"])
            model.load_state_dict(rec["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise BundleError(f"{path}: model {i} ({rec.get('name')!r}) does not match its stored weights or is not "
                              f"registered in this mustsurv ({exc}); rebuild the bundle") from exc
        scaler = None if rec["scaler"] is None else FoldScaler.from_state_dict(rec["scaler"])
        members.append(Member(model.to(device).eval(), scaler, [float(e) for e in rec["bin_edges"]]))
    return Bundle(path=path, data=data, members=members, hashes=frozenset(data["training"]["patient_hashes"]))
