"""Tables for principals, API keys and key usage (identity)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.base import Base


class PrincipalRow(Base):
    """A user, service account or team."""

    __tablename__ = "identity_principals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class ApiKeyRow(Base):
    """An API key: its public id and the hash of its secret, never the secret."""

    __tablename__ = "identity_api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(96))
    principal_id: Mapped[str] = mapped_column(ForeignKey("identity_principals.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rotated_from: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scope_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope_routes: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope_operations: Mapped[list[str]] = mapped_column(JSON, default=list)
    source_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)


class KeyUsageRow(Base):
    """Which operation (on which model) a key was used for; written at a coarse time resolution."""

    __tablename__ = "identity_key_usage"

    key_id: Mapped[str] = mapped_column(ForeignKey("identity_api_keys.key_id"), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    first_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
