"""Encoder registry: a patch encoder is one registered :class:`EncoderSpec` (architecture + metadata).

Adding an encoder is one module that calls :func:`register` plus a test. The model is built lazily, so
the embedding dimension is known without allocating weights (an empty slide never loads UNI2-h).
Besides the registered names, ``timm:<architecture>`` builds any timm model from a local weights file
(:func:`timm_spec`); its dimension and normalisation are read from the model.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TIMM_PREFIX = "timm:"
RANDOM_INIT = "random-init"  # weights hash of a seeded (not pretrained) encoder


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
        resize: side the patch is resized to before the model (the model card's ``Resize``); None keeps
            the patch as it is.
        crop: side of the centre crop after resizing (the card's ``CenterCrop``); None = no crop.
        interpolation: ``bilinear`` or ``bicubic`` (antialiased), the card's resize interpolation.
        pool: maps the model's output to the (B, ``dim``) features (e.g. Virchow2's class token and mean
            patch token); None when the model returns them already.
        adapt_state: adapts a weights file's state dict to the architecture before the strict load
            (e.g. resampling a position embedding trained at another resolution); None = as stored.
    """

    name: str
    dim: int
    build: Callable[[], torch.nn.Module]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    requires_weights: bool = False
    seed: int = 0
    weights_help: str = ""
    resize: int | None = None
    crop: int | None = None
    interpolation: str = "bilinear"
    pool: Callable[[torch.Tensor], torch.Tensor] | None = None
    adapt_state: Callable[[dict[str, torch.Tensor], torch.nn.Module], dict[str, torch.Tensor]] | None = None


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
    """Look up a registered encoder, or describe a ``timm:<architecture>`` one.

    Args:
        name: the encoder's name.

    Returns:
        Its :class:`EncoderSpec`.

    Raises:
        KeyError: unknown name (or unknown timm architecture); the message lists the known names for
            ``slides.encoder``.
    """
    if name.startswith(TIMM_PREFIX):
        return timm_spec(name[len(TIMM_PREFIX):])
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; set `slides.encoder` to one of {available()} "
                       f"or `timm:<architecture>` with its weights in `slides.encoder_weights`.")
    return _REGISTRY[name]


@functools.cache
def timm_spec(arch: str) -> EncoderSpec:
    """Describe a timm architecture as an encoder that needs a local weights file.

    The model is built with ``num_classes=0`` (pooled features); its dimension (``num_features``), input
    side and normalisation come from the model and its timm pretrained configuration, read on the meta
    device (no weights allocated).

    Args:
        arch: a timm model name (``timm.list_models()``).

    Returns:
        The spec, named ``timm:<arch>``.

    Raises:
        KeyError: timm does not know the architecture.
    """
    import timm

    if not timm.is_model(arch):
        raise KeyError(f"unknown timm architecture {arch!r} in `slides.encoder: timm:{arch}`; "
                       f"see timm.list_models() for the names.")

    def build() -> torch.nn.Module:
        return timm.create_model(arch, pretrained=False, num_classes=0)

    with torch.device("meta"):
        model = build()
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", {}) or {})
    side = int(cfg.get("input_size", (3, 224, 224))[-1])
    return EncoderSpec(
        name=f"{TIMM_PREFIX}{arch}", dim=int(model.num_features), build=build,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)),
        requires_weights=True, resize=side, crop=side,
        interpolation="bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear",
        weights_help=f"Give a state dict of timm's {arch!r} built with num_classes=0 (no classifier head; torch "
                     f".bin/.pt/.pth or .safetensors) in "
                     f"`slides.encoder_weights` under the key 'timm:{arch}'.",
    )


def weights_sha256(path: str | os.PathLike | None) -> str:
    """Fingerprint of an encoder's weights, recorded in every features file.

    Args:
        path: the weights file, or None for a seeded random initialisation.

    Returns:
        The hex SHA-256 of the file, or :data:`RANDOM_INIT`.
    """
    if path is None:
        return RANDOM_INIT
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def preprocess(spec: EncoderSpec, x: torch.Tensor) -> torch.Tensor:
    """Resize, centre-crop and normalise images as the encoder's model card does.

    Args:
        spec: the encoder.
        x: (B, 3, H, W) float images in [0, 1] (square patches).

    Returns:
        (B, 3, S, S) normalised images, S = ``spec.crop`` or ``spec.resize`` (H when neither is set).
    """
    if spec.resize is not None and x.shape[-1] != spec.resize:
        x = F.interpolate(x, size=(spec.resize, spec.resize), mode=spec.interpolation, antialias=True,
                          align_corners=False)
    if spec.crop is not None and x.shape[-1] > spec.crop:
        top = (x.shape[-2] - spec.crop) // 2
        left = (x.shape[-1] - spec.crop) // 2
        x = x[..., top:top + spec.crop, left:left + spec.crop]
    mean = torch.tensor(spec.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


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

    @functools.cached_property
    def weights_hash(self) -> str:
        """SHA-256 of the weights file (``random-init`` for the seeded initialisation)."""
        return weights_sha256(self.weights)

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
        x = preprocess(self.spec, patches.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0))
        pool = self.spec.pool or (lambda out: out)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return pool(self.model(x)).float()
        return pool(self.model(x)).float()


def _instantiate(spec: EncoderSpec, weights: Path | None) -> torch.nn.Module:
    """Build ``spec``'s model: seeded without ``weights``, else loaded strictly from that file."""
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            return spec.build()
    with torch.device("meta"):
        model = spec.build()
    try:
        state = _read_state(weights)
        if spec.adapt_state is not None:
            state = spec.adapt_state(state, model)
        model.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, OSError, KeyError, ValueError, TypeError, AttributeError) as err:
        raise EncoderWeightsError(
            f"{weights}: not a state dict of encoder {spec.name!r} ({str(err)[:300]}). {spec.weights_help}"
        ) from err
    return model


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` or torch file (tensors only, never pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"the file holds a {type(state).__name__}, not a state dict")
    return state


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
