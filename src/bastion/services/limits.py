"""Rate limits, concurrency limits and query budgets for gateway calls.

Windows (requests/min, tokens/min, tokens/day, the per-principal daily query budget) use the
``limits`` library with fixed windows: in process memory by default, in Redis when several gateway
replicas must share one global limit. Concurrent requests are counted in memory or with Redis
``INCR``/``DECR`` (keys expire, so a crashed replica cannot hold slots forever).

Token limits are checked before a call (is the window already spent?) and charged after it, with the
real token count: a call is never refused for tokens it has not used yet.

When Redis cannot be reached the service either lets calls through (``on_unavailable: open``,
the lease says ``degraded``) or refuses them with :class:`LimiterUnavailable` (``closed``, the
default). The gateway records an audit event and a metric either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from bastion.config import LimitSet, LimitsSettings
from bastion.domain.identity import Authentication
from bastion.errors import BastionError, LimitExceeded

T = TypeVar("T")
_REDIS_TIMEOUT_S = 0.5
_CONCURRENCY_TTL_S = 600
_SCOPES_CACHE_MAX = 10_000
#: Take a concurrency slot in Redis: the slots are a sorted set of lease ids scored by when they
#: lapse (a replica that died mid-call frees its slots after _CONCURRENCY_TTL_S), so a release removes
#: exactly its own slot, however late, and never another call's. ARGV: limit, now, TTL, lease id.
#: the budget's check and count in one step: -1 when added, else the count (nothing added); the
#: key's expiry is set when this creates it, as limits' own INCR script does
_SPEND_LUA = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return spent end
if redis.call('INCRBY', KEYS[1], ARGV[1]) == tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return -1
"""
_ENTER_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _narrower(scoped: int | None, configured: int | None) -> int | None:
    """A key scope's limit, which can only narrow the configured one (``None``: no limit; a scope
    below 1, which no admin path accepts, counts as none)."""
    if scoped is not None and scoped < 1:
        scoped = None
    if scoped is None or configured is None:
        return configured if scoped is None else scoped
    return min(scoped, configured)


def _take_one(counts: dict[str, int], keys: list[str]) -> None:
    """One less in each of ``keys`` of an in-process count; a count that reaches zero is dropped."""
    for key in keys:
        n = counts.get(key, 0) - 1
        if n > 0:
            counts[key] = n
        else:
            counts.pop(key, None)


class LimiterUnavailable(BastionError):
    """The shared limit store (Redis) cannot be reached and the configuration says fail closed."""

    code = "limiter_unavailable"
    hint = "Check that Redis answers at gateway.limits.redis_url, or set on_unavailable: open."


class BudgetExceeded(LimitExceeded):
    """A principal's query budget is spent. ``first`` is set on the call that crossed it."""

    code = "budget_exceeded"

    def __init__(self, message: str, *, retry_after: float, first: bool) -> None:
        super().__init__(message, retry_after=retry_after)
        self.first = first


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a call is charged to: its key, its principal and the principal's team."""

    key_id: str | None
    principal_id: str
    team: str | None = None
    key_requests_per_minute: int | None = None
    key_tokens_per_minute: int | None = None

    @classmethod
    def of(cls, auth: Authentication) -> Subject:
        p = auth.principal
        return cls(
            key_id=auth.key_id,
            principal_id=p.id,
            team=p.team,
            key_requests_per_minute=auth.scope.requests_per_minute,
            key_tokens_per_minute=auth.scope.tokens_per_minute,
        )


@dataclass(slots=True)
class Lease:
    """A granted call. ``release()`` frees its concurrency slots (always call it, once)."""

    subject: Subject
    degraded: bool = False  # limits were not enforced: the store was down and config says open
    _held: list[str] = field(default_factory=list)  # the concurrency keys this call holds a slot in
    _service: LimitService | None = None
    _id: str = ""  # the lease's member in Redis' slot sets

    async def release(self) -> None:
        service, self._service = self._service, None
        if service is not None and self._held:
            if service._redis is None:
                service._release_local(self._held)  # no await: nothing can interrupt it
            else:
                await asyncio.shield(service._release(self._held, self._id))


@dataclass(frozen=True, slots=True)
class _Scope:
    kind: str  # key | principal | team
    ident: str
    limits: LimitSet
    #: what the hot path needs, worked out once per cached scope
    requests: RateLimitItem | None = None  # the requests-per-minute window
    tokens: tuple[tuple[str, int, RateLimitItem], ...] = ()  # (per, amount, window) of the token limits
    concurrency_key: str = ""


class LimitService:
    """Checks and charges the configured limits."""

    def __init__(self, settings: LimitsSettings, *, storage: Storage | None = None) -> None:
        self.settings = settings
        self._redis: aioredis.Redis | None = None
        self._redis_storage: RedisStorage | None = None
        if storage is not None:
            self._storage = storage
        elif settings.storage == "redis":
            url = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self._storage = self._redis_storage = RedisStorage(
                url,
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=_REDIS_TIMEOUT_S,
                socket_connect_timeout=_REDIS_TIMEOUT_S,
            )
            self._redis = aioredis.Redis.from_url(
                settings.redis_url,
                socket_timeout=_REDIS_TIMEOUT_S,
                socket_connect_timeout=_REDIS_TIMEOUT_S,
            )
        else:
            self._storage = MemoryStorage()
        self._enter_script = self._redis.register_script(_ENTER_LUA) if self._redis is not None else None
        self._spend_script = self._redis.register_script(_SPEND_LUA) if self._redis is not None else None
        self._window = FixedWindowRateLimiter(self._storage)
        self._concurrent: dict[str, int] = {}
        self._uploads: dict[str, int] = {}
        self._items: dict[tuple[str, int], RateLimitItem] = {}
        self._scope_cache: dict[Subject, tuple[_Scope, ...]] = {}
        self._subjects: dict[int, tuple[Authentication, Subject]] = {}
        self.on_unavailable: Callable[[Exception], None] | None = None

    def subject(self, auth: Authentication) -> Subject:
        """:meth:`Subject.of` ``auth``, remembered per Authentication object (the identity service
        hands out the same one for a key while its lookup is cached; it never changes)."""
        hit = self._subjects.get(id(auth))
        if hit is not None and hit[0] is auth:
            return hit[1]
        subject = Subject.of(auth)
        if len(self._subjects) >= _SCOPES_CACHE_MAX:
            self._subjects.clear()
        self._subjects[id(auth)] = (auth, subject)  # holding auth keeps its id from being reused
        return subject

    def _item(self, per: str, amount: int) -> RateLimitItem:
        key = (per, amount)
        item = self._items.get(key)
        if item is None:
            item = RateLimitItemPerMinute(amount) if per == "minute" else RateLimitItemPerDay(amount)
            self._items[key] = item
        return item

    def _scopes(self, s: Subject) -> tuple[_Scope, ...]:
        """The scopes ``s`` is limited in (cached per subject: settings do not change at run time)."""
        cached = self._scope_cache.get(s)
        if cached is not None:
            return cached
        cfg = self.settings
        out: list[_Scope] = []
        if s.key_id is not None:
            per_key = cfg.per_key
            if s.key_requests_per_minute is not None or s.key_tokens_per_minute is not None:
                per_key = per_key.model_copy(
                    update={
                        "requests_per_minute": _narrower(
                            s.key_requests_per_minute, per_key.requests_per_minute
                        ),
                        "tokens_per_minute": _narrower(s.key_tokens_per_minute, per_key.tokens_per_minute),
                    }
                )
            out.append(self._scope("key", s.key_id, per_key))
        out.append(self._scope("principal", s.principal_id, cfg.per_principal))
        if s.team:
            out.append(self._scope("team", s.team, cfg.per_team))
        if len(self._scope_cache) >= _SCOPES_CACHE_MAX:
            self._scope_cache.clear()
        scopes = self._scope_cache[s] = tuple(out)
        return scopes

    def _scope(self, kind: str, ident: str, lim: LimitSet) -> _Scope:
        tokens = tuple(
            (per, amount, self._item(per, amount))
            for per, amount in (("minute", lim.tokens_per_minute), ("day", lim.tokens_per_day))
            if amount
        )
        return _Scope(
            kind,
            ident,
            lim,
            requests=self._item("minute", lim.requests_per_minute) if lim.requests_per_minute else None,
            tokens=tokens,
            concurrency_key=f"bastion:slots:{kind}:{ident}",
        )

    async def acquire(self, subject: Subject, queries: int = 1) -> Lease:
        """Admit one call that spends ``queries`` of the daily query budget (a batch of prompts, or
        of completions, spends one per prompt and completion) or raise :class:`LimitExceeded` /
        :class:`LimiterUnavailable`."""
        lease = Lease(subject, _service=self)
        try:
            await self._guard(self._admit(subject, lease, queries))
        except _Unavailable as e:
            await lease.release()
            if self.settings.on_unavailable == "closed":
                raise LimiterUnavailable("the rate-limit store is unavailable") from e.__cause__
            return Lease(subject, degraded=True)
        except BaseException:
            await lease.release()
            raise
        return lease

    def enter_upload(self, subject: Subject) -> Callable[[], None]:
        """Count one request body still arriving against ``subject``'s concurrency limits, in this
        process (what it bounds is the memory half-sent bodies hold here); returns its release.
        Raises :class:`LimitExceeded` when a scope already has ``concurrent`` bodies arriving."""
        held: list[str] = []
        for sc in self._scopes(subject):
            limit = sc.limits.concurrent
            if not limit:
                continue
            n = self._uploads.get(sc.concurrency_key, 0)
            if n >= limit:
                self._leave_uploads(held)
                raise LimitExceeded(
                    f"{sc.kind} concurrent request limit reached ({limit}, counting uploads)", retry_after=1.0
                )
            self._uploads[sc.concurrency_key] = n + 1
            held.append(sc.concurrency_key)
        return functools.partial(self._leave_uploads, held)

    def _leave_uploads(self, keys: list[str]) -> None:
        _take_one(self._uploads, keys)
        keys.clear()

    async def charge_tokens(self, subject: Subject, tokens: int) -> bool:
        """Charge ``tokens`` used by a finished call; False when the store was unavailable."""
        if tokens <= 0 or not self._charges_tokens(subject):
            return True
        try:
            await self._guard(self._charge(subject, tokens))
        except _Unavailable:
            return False
        return True

    def _charges_tokens(self, s: Subject) -> bool:
        """Whether any scope of ``s`` has a token window (its scopes are cached)."""
        return any(sc.tokens for sc in self._scopes(s))

    async def _charge(self, subject: Subject, tokens: int) -> None:
        for sc in self._scopes(subject):
            for _per, _amount, window in sc.tokens:
                await self._window.hit(window, "tok", sc.kind, sc.ident, cost=tokens)

    async def _admit(self, subject: Subject, lease: Lease, queries: int) -> None:
        now = time.time()
        for sc in self._scopes(subject):
            lim = sc.limits
            rpm = sc.requests
            if rpm is not None and not await self._window.hit(rpm, "req", sc.kind, sc.ident):
                reset = (await self._window.get_window_stats(rpm, "req", sc.kind, sc.ident)).reset_time
                raise LimitExceeded(
                    f"{sc.kind} request rate limit reached ({lim.requests_per_minute}/min)",
                    retry_after=max(1.0, reset - now),
                )
            for per, amount, window in sc.tokens:
                stats = await self._window.get_window_stats(window, "tok", sc.kind, sc.ident)
                if stats.remaining <= 0:
                    raise LimitExceeded(
                        f"{sc.kind} token limit reached ({amount}/{per})",
                        retry_after=max(1.0, stats.reset_time - now),
                    )
            if lim.concurrent:
                key = sc.concurrency_key
                if self._redis is None:
                    entered = self._enter_local(key, lim.concurrent)
                else:
                    lease._id = lease._id or secrets.token_hex(8)
                    entered = await self._enter(key, lim.concurrent, lease._id)
                if not entered:
                    raise LimitExceeded(
                        f"{sc.kind} concurrent request limit reached ({lim.concurrent})", retry_after=1.0
                    )
                lease._held.append(key)
        # Last: a call the rate or concurrency limits refuse never reached a model and does not
        # spend the day's budget (a refusal here leaves the lease to release its slots).
        budget = self.settings.queries_per_day
        if budget:
            await self._spend_budget(subject, budget, queries, now)

    async def _spend_budget(self, subject: Subject, budget: int, queries: int, now: float) -> None:
        """Count ``queries`` against ``subject``'s daily query ``budget``, or raise :class:`BudgetExceeded`.

        The check and the count are one step (Redis: a script; in memory, nothing runs between
        them), so calls admitted together never exceed the budget, and a refused call adds nothing:
        a batch too big for what is left leaves it to smaller calls, on any replica. The first call
        refused with nothing left is the crossing (a flag counted once per window).
        """
        item = self._item("day", budget)
        if queries > budget:  # never passes, in any window: nothing counted, and not worth a retry
            raise BudgetExceeded(
                f"this call asks for {queries} queries; the daily budget is {budget}",
                retry_after=float(item.get_expiry()),
                first=False,
            )
        key = item.key_for("budget", subject.principal_id)
        spent = await self._spend(key, queries, budget, item.get_expiry())
        if spent is None:
            return
        try:  # a refusal stands even when these reads fail (fail-open admits only when nothing is known)
            wait = await self._budget_reset(item, subject, now)
            first = (
                spent >= budget
                and await self._storage.incr(
                    item.key_for("budget_crossed", subject.principal_id), max(1, math.ceil(wait)), 1
                )
                == 1
            )
        except (RedisError, OSError, StorageError):
            wait, first = 60.0, False
        left = budget - spent
        raise BudgetExceeded(
            f"this call asks for {queries} queries of the daily budget; {left} are left"
            if left > 0
            else "the daily query budget of this principal is spent",
            retry_after=wait,
            first=first,
        )

    async def _spend(self, key: str, queries: int, budget: int, expiry: int) -> int | None:
        """Add ``queries`` to the count at ``key`` unless that takes it past ``budget``: None when
        added, else what is already spent (nothing added)."""
        if self._spend_script is not None and self._redis_storage is not None:
            args = [queries, budget, expiry]
            spent = int(
                await self._spend_script(keys=[self._redis_storage.bridge.prefixed_key(key)], args=args)
            )
            return None if spent < 0 else spent
        # MemoryStorage: neither call suspends, so no other task runs between the check and the add
        spent = await self._storage.get(key)
        if spent + queries > budget:
            return spent
        await self._storage.incr(key, expiry, queries)
        return None

    async def _budget_reset(self, item: RateLimitItem, subject: Subject, now: float) -> float:
        """Seconds until ``subject``'s budget window starts afresh (at least 1)."""
        reset = (await self._window.get_window_stats(item, "budget", subject.principal_id)).reset_time
        return max(1.0, reset - now)

    def _enter_local(self, key: str, limit: int) -> bool:
        n = self._concurrent.get(key, 0)
        if n >= limit:
            return False
        self._concurrent[key] = n + 1
        return True

    async def _enter(self, key: str, limit: int, lease_id: str) -> bool:
        """The Redis concurrency slot (in memory, :meth:`_enter_local` is used without awaiting)."""
        assert self._enter_script is not None
        args: list[str | int | float] = [limit, time.time(), _CONCURRENCY_TTL_S, lease_id]
        return bool(await self._enter_script(keys=[key], args=args))

    def _release_local(self, held: list[str]) -> None:
        _take_one(self._concurrent, held)

    async def _release(self, held: list[str], lease_id: str) -> None:
        if self._redis is None:
            self._release_local(held)
            return
        with contextlib.suppress(_Unavailable):  # the slots lapse on their own
            await self._guard(self._redis_release(held, lease_id))

    async def _redis_release(self, held: list[str], lease_id: str) -> None:
        assert self._redis is not None
        for key in held:
            await self._redis.zrem(key, lease_id)

    async def _guard(self, aw: Awaitable[T]) -> T:
        try:
            return await aw
        except (RedisError, OSError, StorageError) as e:
            if self.on_unavailable is not None:
                self.on_unavailable(e)
            raise _Unavailable() from e

    @property
    def fails_closed(self) -> bool:
        """Whether calls are refused while the shared limit store (Redis) is down."""
        return self._redis is not None and self.settings.on_unavailable == "closed"

    async def ping(self) -> bool:
        """True when the limit store answers."""
        try:
            return bool(await self._storage.check())
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        """Close connections to Redis (if any)."""
        if self._redis is not None:
            await self._redis.aclose()
        # limits keeps its own redis-py client on the storage's bridge; close it too.
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            with contextlib.suppress(Exception):
                await client.aclose()


class _Unavailable(Exception):
    pass
