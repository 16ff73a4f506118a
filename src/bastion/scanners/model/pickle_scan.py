"""Static analysis of pickle streams by opcode simulation (protocols 0-5).

Nothing is unpickled. :class:`~bastion.scanners.model.pickle_machine.PickleMachine` walks the
opcodes with the same stack, mark and memo semantics as CPython's unpickler, but keeps only what
matters for security: the strings that can name a global, the globals themselves, and the calls
made with them. :class:`~bastion.scanners.model.pickle_findings.PickleJudge` checks every global
against the allow-list in :mod:`pickle_policy`; computed names (``STACK_GLOBAL`` over values that
are not constant strings), calls of computed objects, extension codes and attribute writes on
imported objects are flagged. A stream that does not parse is an error, never clean.

The machine is the mypyc-compiled build of :mod:`pickle_machine` when the install made one
(:mod:`pickle_native`), else the same class in pure Python; both give identical results.
"""

from __future__ import annotations

from bastion.scanners.model.interface import Deadline, MalformedArtifact, ScanLimits
from bastion.scanners.model.pickle_findings import PickleJudge, PickleScan, trailing_data_finding
from bastion.scanners.model.pickle_machine import PickleMachine
from bastion.scanners.model.pickle_native import native_machine

__all__ = ["NeedsJoblib", "PickleScan", "scan_pickle_stream"]

# The compiled machine reads ``bytes`` only: a mapped file up to this size is copied for it (about
# 1 ms per MB, against some 20 ms per MB of simulation); a larger one is simulated in place.
COPY_LIMIT = 256 << 20


class NeedsJoblib(MalformedArtifact):
    """Raised when a joblib array wrapper is met in fast mode; the caller rescans with ``joblib=True``."""


def scan_pickle_stream(
    data: bytes,
    *,
    location: str,
    limits: ScanLimits,
    deadline: Deadline,
    start: int = 0,
    max_pickles: int | None = None,
    joblib: bool = False,
    machine: type[PickleMachine] | None = None,
) -> PickleScan:
    """Simulate every pickle in ``data`` from ``start`` and collect findings.

    Consecutive pickles (``pickle.dump`` called repeatedly, the legacy PyTorch layout) are all
    analysed, up to ``max_pickles``. Bytes after the last pickle that do not parse as one are
    reported (they are not analysed). :class:`MalformedArtifact` when the first pickle does not parse.
    ``machine`` forces the simulator class (tests and the bench compare the compiled and the
    pure-Python one); by default :func:`default_machine` picks.
    """
    if machine is None:
        machine, data = default_machine(data, max_pickles)
    out = PickleScan()
    pos = start
    n = len(data)
    while pos < n and (max_pickles is None or out.pickles < max_pickles):
        judge = PickleJudge(location, out)
        sim = machine(data, judge, limits, deadline, track_dicts=joblib)
        try:
            end = _run_with_joblib(sim, pos, joblib, location)
        except IndexError:
            err = MalformedArtifact(f"pickle truncated (an argument runs past the end) after offset {pos}")
            if out.pickles == 0:
                raise err from None
            out.findings.append(trailing_data_finding(location, out.end, n - pos, str(err)))
            break
        except NeedsJoblib:
            raise
        except MalformedArtifact as e:
            if out.pickles == 0:
                raise
            out.findings.append(trailing_data_finding(location, out.end, n - pos, e.message))
            break
        except RecursionError:
            raise MalformedArtifact("pickle nesting too deep") from None
        judge.finish()
        out.pickles += 1
        out.end = pos = end
    return out


def default_machine(data: bytes, max_pickles: int | None) -> tuple[type[PickleMachine], bytes]:
    """The compiled machine when installed, with ``data`` as ``bytes``; else the pure-Python one.

    A memory-mapped file is copied to ``bytes`` for the compiled machine only when the whole of it is
    analysed (``max_pickles`` unset) and it is at most :data:`COPY_LIMIT` bytes: the few pickles at
    the head of a legacy PyTorch file or after a NumPy header are simulated in place, so the tensor
    data behind them is never read, and memory stays bounded for huge files.
    """
    native = native_machine()
    if native is None:
        return PickleMachine, data
    if type(data) is bytes:
        return native, data
    if max_pickles is None and len(data) <= COPY_LIMIT:
        return native, bytes(data)
    return PickleMachine, data


def _run_with_joblib(machine: PickleMachine, pos: int, joblib: bool, location: str) -> int:
    end = machine.run(pos)
    out = machine.judge.out
    while end == -1:  # a joblib NumpyArrayWrapper: skip its inline array, then continue the same pickle
        if not joblib:
            raise NeedsJoblib("joblib inline array found: rescan with dict tracking")
        from bastion.scanners.model.joblib_arrays import skip_inline_array

        resume, nested = skip_inline_array(machine.data, out.end, out.wrappers[-1])
        if nested:  # object arrays are stored as a nested pickle
            inner = scan_pickle_stream(
                machine.data,
                location=location,
                limits=machine.limits,
                deadline=machine.deadline,
                start=resume,
                max_pickles=1,
                machine=type(machine),
            )
            out.findings.extend(inner.findings)
            out.globals.update(inner.globals)
            resume = inner.end
        end = machine.run(resume)
    return end
