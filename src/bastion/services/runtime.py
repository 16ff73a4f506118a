"""The services one Bastion process needs, built once from settings and closed together.

Both delivery surfaces use it: ``bastion.app.create_app`` (the server) and the CLI commands that
read or change state (keys, principals, ledger, access reviews).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bastion.authz import Authorizer
from bastion.config import Settings
from bastion.errors import StoreError
from bastion.services.access_review import AccessReviewService
from bastion.services.audit import AuditLog, load_or_create_signing_key
from bastion.services.identity import IdentityService
from bastion.store.engine import make_engine
from bastion.store.migrate import upgrade


def prepare_database(engine: Engine) -> None:
    """Bring the schema up to date (Alembic; safe with several replicas starting at once)."""
    upgrade(engine)


@dataclass
class Runtime:
    """Engine, ledger, identity, authorization and access reviews for one process."""

    settings: Settings
    engine: Engine
    audit: AuditLog
    identity: IdentityService
    authorizer: Authorizer
    access: AccessReviewService

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """Connect, migrate (unless told not to), load the ledger key and build the services."""
        engine = make_engine(settings.database_url, pool_size=settings.database.pool_size)
        try:
            check_database(engine)
            if migrate:
                prepare_database(engine)
            key = load_or_create_signing_key(settings.signing_key_path)
        except BaseException:
            engine.dispose()
            raise
        audit = AuditLog(engine, key, settings.ledger)
        identity = IdentityService.from_settings(engine, audit, settings.auth)
        authorizer = Authorizer.from_files(settings.auth.policy_files)
        access = AccessReviewService(identity, audit, authorizer=authorizer)
        return cls(settings, engine, audit, identity, authorizer, access)

    def close(self) -> None:
        """Flush the ledger and release the database."""
        try:
            self.audit.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_database(engine: Engine) -> None:
    """Fail fast with a clear :class:`StoreError` when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        raise StoreError(
            f"the database at {engine.url.render_as_string(hide_password=True)} does not answer: "
            f"{e.__class__.__name__}"
        ) from e
