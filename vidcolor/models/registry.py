"""Classes by name: the small registry behind backbones, automatic networks and colorizers."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from vidcolor.errors import ModelError

T = TypeVar("T")


class Registry(Generic[T]):
    """``@registry.register("name")`` on a class files it under that name (and sets its
    ``name``); ``registry.get("name")`` finds it, with a one-line error listing the known."""

    def __init__(self, what: str):
        self.what = what
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            cls.name = name
            self._classes[name] = cls
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        if name not in self._classes:
            raise ModelError(f"unknown {self.what} {name!r}; available: {', '.join(self.names())}")
        return self._classes[name]

    def items(self):
        return self._classes.items()
