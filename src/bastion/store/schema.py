"""Creating and upgrading the database schema.

Every ``bastion.store.*_tables`` module registers its tables on :class:`~bastion.store.base.Base`;
:func:`all_metadata` imports them all so that the metadata is complete.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Engine, MetaData

import bastion.store as store_pkg
from bastion.store.base import Base


def all_metadata() -> MetaData:
    """The complete metadata, with every table module imported."""
    for mod in pkgutil.iter_modules(store_pkg.__path__):
        if mod.name.endswith("_tables"):
            importlib.import_module(f"bastion.store.{mod.name}")
    return Base.metadata


def create_all(engine: Engine) -> None:
    """Create every table that does not exist yet (tests and first start; migrations come later)."""
    all_metadata().create_all(engine)
