"""Model registry: every method is registered once by name and built from config keyword arguments."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

M = TypeVar("M", bound=type[nn.Module])

_MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[M], M]:
    """Make a class decorator adding a model class to the registry under ``name``.

    Args:
        name: registry name; must be unique.

    Returns:
        The decorator (returns the class unchanged).

    Raises:
        ValueError: ``name`` is already registered.
    """

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
    """Instantiate the model registered as ``name``.

    Args:
        name: registry name.
        **kwargs: constructor arguments.

    Returns:
        The model.

    Raises:
        KeyError: unknown ``name``; the message lists the registered models.
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(available_models())}")
    return _MODELS[name](**kwargs)


def model_class(name: str) -> type[nn.Module]:
    """Look up the class registered as ``name``.

    Args:
        name: registry name.

    Returns:
        The model class.

    Raises:
        KeyError: unknown ``name``; the message lists the registered models.
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(available_models())}")
    return _MODELS[name]
