"""Model registry: every method is registered once by name and built from config keyword arguments."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

M = TypeVar("M", bound=type[nn.Module])

_MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator adding a model class to the registry under ``name`` (unique)."""

    def decorate(cls: M) -> M:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name].__qualname__}")
        _MODELS[name] = cls
        return cls

    return decorate


def available_models() -> list[str]:
    """Sorted names of the registered models."""
    return sorted(_MODELS)


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Instantiate the model registered as ``name`` with ``kwargs``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(available_models())}")
    return _MODELS[name](**kwargs)


def model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(available_models())}")
    return _MODELS[name]
