"""The compiled pickle machine: :mod:`pickle_machine` built with mypyc, when the install made one.

``pickle_machine.py`` is the only source. The build hook (``hatch_build.py`` at the project root)
compiles a copy of it with mypyc as ``pickle_machine_native`` and appends ``SOURCE_SHA256``, the
SHA-256 of the source it was built from. The compiled module is used only while that digest matches
the ``pickle_machine.py`` beside it, so an edited source is never shadowed by a stale build; when
there is no compiled module (no C compiler at install time, another platform) the pure-Python
class is used, with the same results, only slower.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from pathlib import Path

from bastion.scanners.model import pickle_machine
from bastion.scanners.model.pickle_machine import PickleMachine

NATIVE_MODULE = "bastion.scanners.model.pickle_machine_native"


def source_digest(source: bytes) -> str:
    """The digest the build hook records: SHA-256 of the ``pickle_machine.py`` bytes."""
    return hashlib.sha256(source).hexdigest()


@functools.cache
def native_machine() -> type[PickleMachine] | None:
    """The compiled :class:`PickleMachine`, or ``None`` when absent or built from another source."""
    try:
        module = importlib.import_module(NATIVE_MODULE)
    except ImportError:
        return None
    return matching_machine(module, Path(pickle_machine.__file__).read_bytes())


def matching_machine(module: object, source: bytes) -> type[PickleMachine] | None:
    """``module.PickleMachine`` if ``module`` was compiled from exactly ``source``."""
    if getattr(module, "SOURCE_SHA256", None) != source_digest(source):
        return None
    machine: type[PickleMachine] | None = getattr(module, "PickleMachine", None)
    return machine
