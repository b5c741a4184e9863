"""Encoder registry: a patch encoder is one registered :class:`EncoderSpec` (architecture + metadata).

Adding an encoder is one module that calls :func:`register` plus a test. The model is built lazily, so
the embedding dimension is known without allocating weights (an empty slide never loads UNI2-h).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EncoderWeightsError(FileNotFoundError):
    """An encoder's weights file is missing or does not fit its architecture; the message says how to fix it."""


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder.

    Attributes:
        name: the encoder's name (``slides.encoder``).
        dim: feature dimension.
        build: returns the architecture (weights random or seeded), mapping (B, 3, H, W) float images
            normalised with ``mean``/``std`` to (B, ``dim``) features.
        mean: per-channel mean of the input normalisation.
        std: per-channel standard deviation of the input normalisation.
        requires_weights: the encoder is useless without its weights file (UNI2-h).
        seed: seed of the initialisation when no weights are given.
        weights_help: how to obtain the weights, appended to weights errors.
    """

    name: str
    dim: int
    build: Callable[[], torch.nn.Module]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    requires_weights: bool = False
    seed: int = 0
    weights_help: str = ""


_REGISTRY: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add an encoder to the registry.

    Args:
        spec: the encoder; its name must be new.

    Returns:
        ``spec``.

    Raises:
        ValueError: an encoder of that name is registered already.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"encoder {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    """Names of the registered encoders.

    Returns:
        The names, sorted.
    """
    return sorted(_REGISTRY)


def get_spec(name: str) -> EncoderSpec:
    """Look up a registered encoder.

    Args:
        name: the encoder's name.

    Returns:
        Its :class:`EncoderSpec`.

    Raises:
        KeyError: unknown name; the message lists the known names for ``slides.encoder``.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; set `slides.encoder` to one of {available()}.")
    return _REGISTRY[name]


@dataclass
class Encoder:
    """A ready-to-run encoder on a device; the model is built on first use of :attr:`model`.

    Attributes:
        spec: the encoder's spec.
        weights: the local weights file, or None for the seeded initialisation.
        device: device the model runs on.
    """

    spec: EncoderSpec
    weights: Path | None
    device: torch.device
    _model: torch.nn.Module | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self.spec.dim

    @property
    def model(self) -> torch.nn.Module:
        """The model, built (and its weights loaded) on first access, in eval mode on :attr:`device`."""
        if self._model is None:
            self._model = _instantiate(self.spec, self.weights).to(self.device).eval()
        return self._model

    @torch.inference_mode()
    def encode(self, patches: torch.Tensor) -> torch.Tensor:
        """Compute the features of a batch of patches.

        Scaling and normalisation happen on the device; bf16 autocast on CUDA, float32 elsewhere.

        Args:
            patches: (B, H, W, 3) uint8 patches, on any device (moved to ours).

        Returns:
            (B, dim) float32 features.

        Raises:
            EncoderWeightsError: the weights file (loaded on first use) does not fit the architecture.
        """
        x = patches.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.model(x).float()
        return self.model(x).float()


def _instantiate(spec: EncoderSpec, weights: Path | None) -> torch.nn.Module:
    """Build ``spec``'s model: seeded without ``weights``, else loaded strictly from that file."""
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            return spec.build()
    with torch.device("meta"):
        model = spec.build()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, OSError, KeyError) as err:
        raise EncoderWeightsError(
            f"{weights}: not a state dict of encoder {spec.name!r} ({str(err)[:300]}). {spec.weights_help}"
        ) from err
    return model


def build_encoder(name: str, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Encoder:
    """Get the registered encoder ``name`` on a device.

    Args:
        name: the encoder's name.
        weights: its local weights file; None (or empty) uses the seeded initialisation.
        device: device to run it on.

    Returns:
        The encoder (its model is built on first use).

    Raises:
        KeyError: unknown encoder name.
        EncoderWeightsError: the weights file does not exist, or the encoder requires weights (UNI2-h) and
            none is given; the message names the path and how to obtain the file.
    """
    spec = get_spec(name)
    path = Path(weights) if weights else None
    if path is not None and not path.is_file():
        raise EncoderWeightsError(f"encoder {name!r}: weights file {path} does not exist. {spec.weights_help}")
    if path is None and spec.requires_weights:
        raise EncoderWeightsError(
            f"encoder {name!r} needs its weights: set `slides.encoder_weights.{name}` in the config. "
            f"{spec.weights_help}"
        )
    return Encoder(spec, path, torch.device(device))


def pick_device(preference: str = "auto") -> torch.device:
    """Choose the device of the patch encoder at run time.

    Args:
        preference: ``"auto"`` (``cuda`` when available, else ``cpu``), ``"cuda"`` or ``"cpu"``.

    Returns:
        The device.

    Raises:
        RuntimeError: ``cuda`` is asked for but no CUDA device is visible.
    """
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("`slides.device: cuda` but no CUDA device is visible; use `auto` or `cpu`.")
    return torch.device(preference)
