"""Choosing the pickle machine: the compiled build only when it matches the source, else pure Python."""

from __future__ import annotations

import hashlib
import mmap
import pickle
import types
from pathlib import Path

import pytest

from bastion.scanners.model import pickle_machine, pickle_native, pickle_scan
from bastion.scanners.model.interface import Deadline, ScanLimits
from bastion.scanners.model.pickle_machine import PickleMachine
from bastion.scanners.model.pickle_native import matching_machine, native_machine, source_digest


class _Machine(PickleMachine):
    """Stands in for a compiled class in the selection tests (a distinct type to compare against)."""


def test_matching_machine_needs_the_digest_of_the_exact_source() -> None:
    source = b"print('machine')\n"
    good = types.SimpleNamespace(SOURCE_SHA256=hashlib.sha256(source).hexdigest(), PickleMachine=_Machine)
    assert matching_machine(good, source) is _Machine
    assert matching_machine(good, source + b"# edited\n") is None  # a stale build is never used
    assert matching_machine(types.SimpleNamespace(PickleMachine=_Machine), source) is None


def test_installed_native_machine_was_built_from_this_source() -> None:
    native = native_machine()
    if native is None:
        pytest.skip("no compiled pickle machine in this install (see hatch_build.py)")
    module = __import__(pickle_native.NATIVE_MODULE, fromlist=["SOURCE_SHA256"])
    assert source_digest(Path(pickle_machine.__file__).read_bytes()) == module.SOURCE_SHA256
    assert native is not PickleMachine and native.__name__ == "PickleMachine"


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> type[PickleMachine]:
    monkeypatch.setattr(pickle_scan, "native_machine", lambda: _Machine)
    return _Machine


def test_bytes_go_to_the_compiled_machine(compiled: type[PickleMachine]) -> None:
    data = pickle.dumps([1, "a"])
    assert pickle_scan.default_machine(data, None) == (compiled, data)
    assert pickle_scan.default_machine(data, 1)[0] is compiled


def test_without_a_compiled_machine_the_pure_one_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_scan, "native_machine", lambda: None)
    data = pickle.dumps([1, "a"])
    assert pickle_scan.default_machine(data, None) == (PickleMachine, data)
    res = pickle_scan.scan_pickle_stream(data, location="t", limits=ScanLimits(), deadline=Deadline(30))
    assert res.pickles == 1 and res.findings == []


def test_mapped_files_are_copied_only_when_whole_and_bounded(
    compiled: type[PickleMachine], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(list(range(1000)), protocol=4))
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        machine, data = pickle_scan.default_machine(mm, None)  # type: ignore[arg-type]
        assert machine is compiled and type(data) is bytes and data == path.read_bytes()
        # a few pickles at the head (legacy torch, NumPy object arrays): simulated in place
        machine, data = pickle_scan.default_machine(mm, 5)  # type: ignore[arg-type]
        assert machine is PickleMachine and data is mm  # type: ignore[comparison-overlap]
        monkeypatch.setattr(pickle_scan, "COPY_LIMIT", len(mm) - 1)
        machine, data = pickle_scan.default_machine(mm, None)  # type: ignore[arg-type]
        assert machine is PickleMachine and data is mm  # type: ignore[comparison-overlap]
