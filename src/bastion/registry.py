"""A typed registry of named plugins.

Plugins are chosen by *name* in configuration, never by dotted import path: config must not be
able to make the process import arbitrary code. Built-ins register themselves; third-party
plugins may be added through the ``bastion.<family>`` entry-point group, loaded lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from bastion.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → factory mapping for one plugin family (detectors, scanners, key providers …)."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._factories: dict[str, Callable[..., T]] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register ``factory`` under ``name``. Names are unique per family."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            with self._lock:
                if name in self._factories and self._factories[name] is not factory:
                    raise ValueError(f"{self.family} plugin {name!r} registered twice")
                self._factories[name] = factory
            return factory

        return decorate

    def add(self, name: str, factory: Callable[..., T]) -> None:
        """Register ``factory`` under ``name`` (non-decorator form)."""
        self.register(name)(factory)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        with self._lock:
            for ep in entry_points(group=f"bastion.{self.family}"):
                self._factories.setdefault(ep.name, ep.load())
            self._entry_points_loaded = True

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; a :class:`ConfigError` naming the choices otherwise."""
        self._load_entry_points()
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.family} plugin {name!r}",
                hint=f"Choose one of: {', '.join(self.names()) or '(none registered)'}.",
            ) from None

    def create(self, name: str, /, *args: object, **kwargs: object) -> T:
        """Build the plugin registered under ``name``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
