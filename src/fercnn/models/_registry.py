"""The model registry, in its own module (as timm's ``_registry.py``): model files import
``register`` from here, and the package imports the model files, so nothing imports in a
circle."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import FercnnError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = factory
        return factory

    return add


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise FercnnError(f"unknown model {name!r}: choose one of {', '.join(model_names())}")
    return _REGISTRY[name](**kwargs)
