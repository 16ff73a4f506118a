"""The per-process cache of API key lookups used by :class:`~bastion.services.identity.IdentityService`.

A lookup (key and owning principal, or a negative entry for an unknown key id) is served from
memory for ``ttl_s``; entries are dropped at once when the service changes a key or principal.
The same cache throttles the hot path's writes (``last_used_at``, key usage rows) to at most once
per ``resolution_s`` per slot. Both maps are bounded (cleared when full).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from bastion.identity.records import ApiKeyRecord, PrincipalRecord

_CACHE_MAX = 50_000


@dataclass(frozen=True, slots=True)
class CachedKey:
    """One cached lookup of a key id."""

    key: ApiKeyRecord | None  # None: unknown key id (negative entry)
    principal: PrincipalRecord | None
    loaded_at: float


class KeyLookupCache:
    """Cached key lookups (negative entries too) and the write throttle, safe across threads."""

    def __init__(self, *, ttl_s: float, resolution_s: float, monotonic: Callable[[], float]) -> None:
        self._ttl = ttl_s
        self._resolution = resolution_s
        self._mono = monotonic
        self._cache: dict[str, CachedKey] = {}
        self._written: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def lookup(
        self, key_id: str, load: Callable[[], tuple[ApiKeyRecord | None, PrincipalRecord | None]]
    ) -> CachedKey:
        """The cached entry for ``key_id`` while fresh, else ``load()``'s result, cached."""
        now = self._mono()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit.loaded_at < self._ttl:
            return hit
        key, owner = load()
        entry = CachedKey(key, owner, now)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = entry
        return entry

    def peek(self, key_id: str) -> CachedKey | None:
        """The cached entry for ``key_id`` while fresh, else None; never loads (safe on an event loop)."""
        hit = self._cache.get(key_id)
        if hit is not None and self._mono() - hit.loaded_at < self._ttl:
            return hit
        return None

    def _due_at(self, slot: tuple[str, ...], now: float) -> bool:
        last = self._written.get(slot)
        return last is None or now - last >= self._resolution

    def drop(self, key_id: str) -> None:
        """Forget ``key_id``."""
        with self._lock:
            self._cache.pop(key_id, None)

    def drop_principal(self, principal_id: str) -> None:
        """Forget every cached key of ``principal_id``."""
        with self._lock:
            for kid in [
                k for k, v in self._cache.items() if v.key is not None and v.key.principal_id == principal_id
            ]:
                del self._cache[kid]

    def clear(self) -> None:
        """Forget every cached key."""
        with self._lock:
            self._cache.clear()

    def is_due(self, slot: tuple[str, ...]) -> bool:
        """Whether :meth:`due` would say True for ``slot`` now (nothing is noted)."""
        return self._due_at(slot, self._mono())

    def due(self, slot: tuple[str, ...]) -> bool:
        """True (and noted) when ``slot`` was not written within the resolution."""
        now = self._mono()
        with self._lock:
            if not self._due_at(slot, now):
                return False
            if len(self._written) >= _CACHE_MAX:
                self._written.clear()
            self._written[slot] = now
            return True
