"""Repository for principals, API keys and key usage. Returns identity records; never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bastion.domain.identity import KeyScope, PrincipalKind, Role
from bastion.identity.records import ApiKeyRecord, KeyUsage, PrincipalRecord
from bastion.store.identity_tables import ApiKeyRow, KeyUsageRow, PrincipalRow


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything Bastion stores is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _principal(row: PrincipalRow) -> PrincipalRecord:
    return PrincipalRecord(
        id=row.id,
        kind=PrincipalKind(row.kind),
        name=row.name,
        roles=frozenset(Role(r) for r in row.roles or [] if r in Role._value2member_map_),
        team=row.team,
        attributes={str(k): str(v) for k, v in (row.attributes or {}).items()},
        disabled=bool(row.disabled),
        created_at=_aware(row.created_at) or row.created_at,
        updated_at=_aware(row.updated_at) or row.updated_at,
        version=row.version,
    )


def _key(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        principal_id=row.principal_id,
        name=row.name,
        secret_hash=row.secret_hash,
        created_at=_aware(row.created_at) or row.created_at,
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
        revoked_reason=row.revoked_reason,
        last_used_at=_aware(row.last_used_at),
        rotated_from=row.rotated_from,
        scope=KeyScope(
            models=tuple(row.scope_models or ()),
            routes=tuple(row.scope_routes or ()),
            operations=tuple(row.scope_operations or ()),
            source_cidrs=tuple(row.source_cidrs or ()),
            requests_per_minute=row.requests_per_minute,
            tokens_per_minute=row.tokens_per_minute,
        ),
    )


class IdentityRepository:
    """Reads and writes identity rows inside the caller's session (the caller owns the transaction)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- principals ------------------------------------------------------------------------------

    def add_principal(self, p: PrincipalRecord) -> None:
        self._s.add(
            PrincipalRow(
                id=p.id,
                kind=p.kind.value,
                name=p.name,
                roles=sorted(r.value for r in p.roles),
                team=p.team,
                attributes=dict(p.attributes),
                disabled=p.disabled,
                created_at=p.created_at,
                updated_at=p.updated_at,
                version=p.version,
            )
        )
        self._s.flush()

    def get_principal(self, principal_id: str) -> PrincipalRecord | None:
        row = self._s.get(PrincipalRow, principal_id)
        return _principal(row) if row else None

    def get_principal_by_name(self, name: str) -> PrincipalRecord | None:
        row = self._s.scalars(select(PrincipalRow).where(PrincipalRow.name == name)).first()
        return _principal(row) if row else None

    def list_principals(self) -> list[PrincipalRecord]:
        return [_principal(r) for r in self._s.scalars(select(PrincipalRow).order_by(PrincipalRow.name))]

    def save_principal(self, p: PrincipalRecord) -> None:
        """Overwrite the mutable fields of an existing principal."""
        row = self._s.get(PrincipalRow, p.id)
        if row is None:
            raise KeyError(p.id)
        row.roles = sorted(r.value for r in p.roles)
        row.team = p.team
        row.attributes = dict(p.attributes)
        row.disabled = p.disabled
        row.updated_at = p.updated_at
        row.version = p.version
        self._s.flush()

    def count_principals(self) -> int:
        return int(self._s.scalar(select(func.count()).select_from(PrincipalRow)) or 0)

    # -- keys ------------------------------------------------------------------------------------

    def add_key(self, k: ApiKeyRecord) -> None:
        s = k.scope
        self._s.add(
            ApiKeyRow(
                key_id=k.key_id,
                secret_hash=k.secret_hash,
                principal_id=k.principal_id,
                name=k.name,
                created_at=k.created_at,
                expires_at=k.expires_at,
                revoked_at=k.revoked_at,
                revoked_reason=k.revoked_reason,
                last_used_at=k.last_used_at,
                rotated_from=k.rotated_from,
                scope_models=list(s.models),
                scope_routes=list(s.routes),
                scope_operations=list(s.operations),
                source_cidrs=list(s.source_cidrs),
                requests_per_minute=s.requests_per_minute,
                tokens_per_minute=s.tokens_per_minute,
            )
        )
        self._s.flush()

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._s.get(ApiKeyRow, key_id)
        return _key(row) if row else None

    def list_keys(
        self, principal_id: str | None = None, *, include_revoked: bool = True
    ) -> list[ApiKeyRecord]:
        q = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
        if principal_id is not None:
            q = q.where(ApiKeyRow.principal_id == principal_id)
        if not include_revoked:
            q = q.where(ApiKeyRow.revoked_at.is_(None))
        return [_key(r) for r in self._s.scalars(q)]

    def revoke_key(self, key_id: str, at: datetime, reason: str) -> bool:
        """Mark a key revoked; False when it does not exist or was already revoked."""
        res = self._s.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )
        return bool(getattr(res, "rowcount", 0))

    def set_key_expiry(self, key_id: str, expires_at: datetime | None) -> None:
        self._s.execute(update(ApiKeyRow).where(ApiKeyRow.key_id == key_id).values(expires_at=expires_at))

    def touch_keys(self, uses: Iterable[tuple[str, datetime]]) -> None:
        """Set ``last_used_at`` (only ever forward) for each (key id, time)."""
        for key_id, at in uses:
            self._s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id)
                .where((ApiKeyRow.last_used_at.is_(None)) | (ApiKeyRow.last_used_at < at))
                .values(last_used_at=at)
            )

    # -- usage -----------------------------------------------------------------------------------

    def record_usage(self, key_id: str, operation: str, model: str, at: datetime) -> None:
        """Upsert one (key, operation, model) usage row."""
        dialect = self._s.get_bind().dialect.name
        values = {
            "key_id": key_id,
            "operation": operation,
            "model": model,
            "first_used_at": at,
            "last_used_at": at,
        }
        if dialect == "postgresql":
            pg = postgresql.insert(KeyUsageRow).values(**values)
            self._s.execute(
                pg.on_conflict_do_update(
                    index_elements=["key_id", "operation", "model"],
                    set_={"last_used_at": pg.excluded.last_used_at},
                )
            )
        else:
            lite = sqlite.insert(KeyUsageRow).values(**values)
            self._s.execute(
                lite.on_conflict_do_update(
                    index_elements=["key_id", "operation", "model"],
                    set_={"last_used_at": lite.excluded.last_used_at},
                )
            )

    def usage(self, key_ids: Sequence[str] | None = None) -> list[KeyUsage]:
        q = select(KeyUsageRow).order_by(KeyUsageRow.key_id, KeyUsageRow.operation, KeyUsageRow.model)
        if key_ids is not None:
            q = q.where(KeyUsageRow.key_id.in_(list(key_ids)))
        return [
            KeyUsage(
                key_id=r.key_id,
                operation=r.operation,
                model=r.model,
                first_used_at=_aware(r.first_used_at) or r.first_used_at,
                last_used_at=_aware(r.last_used_at) or r.last_used_at,
            )
            for r in self._s.scalars(q)
        ]
