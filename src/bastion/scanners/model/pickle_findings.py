"""What the pickle simulator's security decisions produce: the values it tracks and the findings.

The simulator (:mod:`pickle_machine`) keeps only values that can reach a decision: strings that
may name a global, imported globals (:class:`ImportedGlobal`) and the results of calls
(:class:`CallResult`); all other data is the :data:`UNK` sentinel. :class:`PickleJudge` turns
``GLOBAL``/``STACK_GLOBAL``/``INST``, calls, ``BUILD`` and extension codes into findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_CODE_EXECUTION, MODEL_INTEGRITY
from bastion.scanners.model.interface import make_finding
from bastion.scanners.model.pickle_opcodes import as_text
from bastion.scanners.model.pickle_policy import GlobalClass, classify, is_ufunc_reconstruct

_HINT_DANGEROUS = (
    "Do not load this file. Obtain the model from a trusted source, or re-export its weights to "
    "safetensors from a trusted environment."
)
_HINT_UNKNOWN = (
    "Loading this file imports the named global and may call it. Confirm it is expected (e.g. your own "
    "class), load with torch.load(weights_only=True) or convert the weights to safetensors."
)


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


UNK = _Unknown()
"""Any value the policy never inspects (numbers, containers, long strings, bytes)."""


class ImportedGlobal:
    """A global the pickle imports (``?`` module for computed or extension-code globals)."""

    __slots__ = ("module", "name", "offset")

    def __init__(self, module: str, name: str, offset: int) -> None:
        self.module = module
        self.name = name
        self.offset = offset

    def __repr__(self) -> str:  # shown in findings: no memory address
        return f"<global {self.module}.{self.name}>"


class CallResult:
    """The object a ``REDUCE``/``NEWOBJ``/``INST``/``OBJ`` call returns; ``BUILD`` sets ``state``."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: object, args: object) -> None:
        self.func = func
        self.args = args
        self.state: object = None

    def __repr__(self) -> str:  # shown in findings: no memory address, no recursion into chains
        return "<call result>"


@dataclass(slots=True)
class PickleScan:
    """What one pickle stream revealed."""

    findings: list[Finding] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)  # "module.name" -> classification
    end: int = 0  # offset just after the last STOP
    pickles: int = 0
    # joblib: NumpyArrayWrapper states seen (for skipping inline array data)
    wrappers: list[object] = field(default_factory=list)


class PickleJudge:
    """Decides, for one pickle, what its imports, calls and attribute writes mean."""

    __slots__ = ("location", "out", "ufunc_calls", "verified")

    def __init__(self, location: str, out: PickleScan) -> None:
        self.location = location
        self.out = out
        self.ufunc_calls: list[ImportedGlobal] = []
        self.verified: set[int] = set()

    def flag(self, type_: str, severity: Severity, message: str, offset: int, *, hint: str = "") -> None:
        """Record a code-execution finding at ``offset`` of the stream."""
        self.out.findings.append(
            make_finding(
                type_,
                severity,
                message,
                location=f"{self.location}@{offset}",
                hint=hint or _HINT_DANGEROUS,
                controls=MODEL_CODE_EXECUTION,
                metadata={"offset": offset},
            )
        )

    def on_global(self, module: str, name: str, offset: int, opcode: str) -> ImportedGlobal:
        """Classify an imported global against the allow-list; flag it unless it is safe."""
        g = ImportedGlobal(module, name, offset)
        key = f"{module}.{name}"
        if is_ufunc_reconstruct(module, name):
            self.ufunc_calls.append(g)  # decided when called (its arguments name the real target)
            self.out.globals.setdefault(key, "deferred")
            return g
        verdict = classify(module, name)
        self.out.globals[key] = verdict.kind.value
        if verdict.kind is GlobalClass.DANGEROUS:
            self.flag(
                "pickle.dangerous_global", Severity.CRITICAL, f"{opcode} imports {verdict.reason}", offset
            )
        elif verdict.kind is GlobalClass.UNKNOWN:
            self.flag(
                "pickle.unknown_global",
                Severity.MEDIUM,
                f"{opcode} imports {verdict.reason}",
                offset,
                hint=_HINT_UNKNOWN,
            )
        return g

    def on_dynamic_global(self, offset: int) -> ImportedGlobal:
        """``STACK_GLOBAL`` over values that are not constant strings."""
        self.flag(
            "pickle.dynamic_global",
            Severity.HIGH,
            "STACK_GLOBAL imports a name computed at load time (not constant strings): "
            "the target cannot be verified",
            offset,
        )
        return ImportedGlobal("?", "?", offset)

    def on_extension(self, width: int, code: int, offset: int) -> ImportedGlobal:
        """``EXT1``/``EXT2``/``EXT4``: a global from the copyreg registry, unverifiable."""
        self.flag(
            "pickle.extension_code",
            Severity.HIGH,
            f"EXT{width} loads global #{code} from the copyreg extension registry (cannot be verified)",
            offset,
        )
        return ImportedGlobal("?ext", str(code), offset)

    def on_call(self, func: object, args: object, offset: int, opcode: str) -> CallResult:
        """A call: of a named global (checked at import), or of a computed object (flagged)."""
        if isinstance(func, ImportedGlobal):
            if func in self.ufunc_calls:
                self._check_ufunc(func, args, offset)
        else:
            self.flag(
                "pickle.indirect_call",
                Severity.HIGH,
                f"{opcode} calls a computed object (not a named global): a gadget chain",
                offset,
            )
        return CallResult(func, args)

    def on_attribute_write(self, obj: ImportedGlobal, offset: int) -> None:
        """``BUILD`` on an imported object: monkey-patching at load time."""
        self.flag(
            "pickle.attribute_write",
            Severity.HIGH,
            f"BUILD sets attributes on the imported object {obj.module}.{obj.name} "
            "(monkey-patching at load time)",
            offset,
        )

    def _check_ufunc(self, g: ImportedGlobal, args: object, offset: int) -> None:
        if isinstance(args, tuple):
            args = tuple(as_text(a, offset) for a in args)
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and all(isinstance(a, str) for a in args)
            and classify(str(args[0]), str(args[1])).kind is GlobalClass.SAFE
        ):
            self.verified.add(id(g))
            return
        self.flag(
            "pickle.dangerous_global",
            Severity.CRITICAL,
            f"{g.module}.{g.name} imports an arbitrary global named by its arguments ({args!r:.80})",
            offset,
        )
        self.verified.add(id(g))

    def finish(self) -> None:
        """After the pickle's STOP: a ufunc reconstructor imported but never verified is flagged."""
        for g in self.ufunc_calls:
            if id(g) not in self.verified:
                self.flag(
                    "pickle.dangerous_global",
                    Severity.HIGH,
                    f"{g.module}.{g.name} is imported but not called with constant numpy names",
                    g.offset,
                )


def trailing_data_finding(location: str, end: int, size: int, why: str) -> Finding:
    """Bytes after the last complete pickle that do not parse (a loader reading on would see them)."""
    return make_finding(
        "pickle.trailing_data",
        Severity.MEDIUM,
        f"{size} bytes after the last complete pickle do not parse as a pickle ({why}); "
        "a loader that reads further would see unanalysed data",
        location=f"{location}@{end}",
        hint="Inspect the file by hand; legitimate pickles end at their STOP opcode.",
        controls=MODEL_INTEGRITY,
        metadata={"offset": end},
    )
