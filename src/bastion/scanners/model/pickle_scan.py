"""Static analysis of pickle streams by opcode simulation (protocols 0-5).

Nothing is unpickled. The simulator walks the opcodes with the same stack, mark and memo
semantics as CPython's unpickler, but keeps only what matters for security: the strings that can
name a global, the globals themselves, and the calls made with them. Every global is checked
against the allow-list in :mod:`pickle_policy`; computed names (``STACK_GLOBAL`` over values that
are not constant strings), calls of computed objects, extension codes and attribute writes on
imported objects are flagged. A stream that does not parse is an error, never clean.

Speed: one tight loop with integer opcode dispatch; long runs of homogeneous numeric opcodes are
consumed by a compiled regular expression; large string and bytes payloads are skipped unread.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_CODE_EXECUTION, MODEL_INTEGRITY
from bastion.scanners.model.interface import Deadline, MalformedArtifact, ScanLimits, make_finding
from bastion.scanners.model.pickle_policy import GlobalClass, classify, is_ufunc_reconstruct

_HINT_DANGEROUS = (
    "Do not load this file. Obtain the model from a trusted source, or re-export its weights to "
    "safetensors from a trusted environment."
)
_HINT_UNKNOWN = (
    "Loading this file imports the named global and may call it. Confirm it is expected (e.g. your own "
    "class), load with torch.load(weights_only=True) or convert the weights to safetensors."
)
_MAX_DECODED_STR = 1024  # longer strings cannot name a global; they are skipped, not decoded


class NeedsJoblib(MalformedArtifact):
    """Raised when a joblib array wrapper is met in fast mode; the caller rescans with ``joblib=True``."""


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


UNK = _Unknown()


class _Global:
    __slots__ = ("module", "name", "offset")

    def __init__(self, module: str, name: str, offset: int) -> None:
        self.module = module
        self.name = name
        self.offset = offset


class _Call:
    __slots__ = ("args", "func", "state")

    def __init__(self, func: object, args: object) -> None:
        self.func = func
        self.args = args
        self.state: object = None


@dataclass(slots=True)
class PickleScan:
    """What one pickle stream revealed."""

    findings: list[Finding] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)  # "module.name" -> classification
    end: int = 0  # offset just after the last STOP
    pickles: int = 0
    # joblib: NumpyArrayWrapper states seen (for skipping inline array data)
    wrappers: list[object] = field(default_factory=list)


_RUNS = {
    ord("K"): (re.compile(rb"(?:K[\x00-\xff])+"), 2),
    ord("M"): (re.compile(rb"(?:M[\x00-\xff]{2})+"), 3),
    ord("J"): (re.compile(rb"(?:J[\x00-\xff]{4})+"), 5),
    ord("G"): (re.compile(rb"(?:G[\x00-\xff]{8})+"), 9),
}

# opcode bytes
(MARK, STOP, POP, POP_MARK, DUP, FLOAT, INT, BININT, BININT1, LONG, BININT2, NONE, PERSID, BINPERSID,
 REDUCE, STRING, BINSTRING, SHORT_BINSTRING, UNICODE, BINUNICODE, APPEND, BUILD, GLOBAL, DICT,
 EMPTY_DICT, APPENDS, GET, BINGET, INST, LONG_BINGET, LIST, EMPTY_LIST, OBJ, PUT, BINPUT, LONG_BINPUT,
 SETITEM, TUPLE, EMPTY_TUPLE, SETITEMS, BINFLOAT) = b"(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uG"  # fmt: skip
(PROTO, NEWOBJ, EXT1, EXT2, EXT4, TUPLE1, TUPLE2, TUPLE3, NEWTRUE, NEWFALSE, LONG1, LONG4) = range(0x80, 0x8C)
BINBYTES, SHORT_BINBYTES = b"BC"
(SHORT_BINUNICODE, BINUNICODE8, BINBYTES8, EMPTY_SET, ADDITEMS, FROZENSET, NEWOBJ_EX, STACK_GLOBAL,
 MEMOIZE, FRAME, BYTEARRAY8, NEXT_BUFFER, READONLY_BUFFER) = range(0x8C, 0x99)  # fmt: skip

_KIND_TABLE = bytearray(256)
for _k, _ops in {
    1: (BINPUT, MEMOIZE, LONG_BINPUT),
    2: (BINGET, LONG_BINGET),
    3: (BININT1, BININT2, BININT, BINFLOAT),
    4: (SHORT_BINBYTES, SHORT_BINSTRING),
    5: (BINUNICODE, BINBYTES, BINSTRING),
    6: (BINUNICODE8, BINBYTES8, BYTEARRAY8),
    7: (MARK,),
    8: (EMPTY_TUPLE,),
    9: (EMPTY_DICT,),
    10: (EMPTY_LIST, EMPTY_SET, NONE, NEWTRUE, NEWFALSE),
    11: (TUPLE1, TUPLE2, TUPLE3),
    12: (TUPLE, LIST, DICT, FROZENSET),
    13: (SETITEMS, APPENDS, ADDITEMS),
    14: (SETITEM, APPEND),
}.items():
    for _op in _ops:
        _KIND_TABLE[_op] = _k
_KIND = bytes(_KIND_TABLE)


class _Sim:
    """One simulation over ``data``; :meth:`run` returns the offset after the final STOP."""

    def __init__(self, data: bytes, location: str, limits: ScanLimits, deadline: Deadline, out: PickleScan):
        self.data = data
        self.location = location
        self.limits = limits
        self.deadline = deadline
        self.out = out
        self.ufunc_calls: list[_Global] = []
        self.verified: set[int] = set()
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.track_dicts = False  # dict contents matter only for joblib's array wrappers

    def resume(self, pos: int) -> int:
        """Continue the same pickle (same stack and memo) at ``pos``, after joblib's inline data."""
        return self.run(pos)

    # -- findings ----------------------------------------------------------------------------
    def flag(self, type_: str, severity: Severity, message: str, offset: int, *, hint: str = "") -> None:
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

    def on_global(self, module: str, name: str, offset: int, opcode: str) -> _Global:
        g = _Global(module, name, offset)
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

    def on_call(self, func: object, args: object, offset: int, opcode: str) -> _Call:
        if isinstance(func, _Global):
            if func in self.ufunc_calls:
                self.check_ufunc(func, args, offset)
        else:
            self.flag(
                "pickle.indirect_call",
                Severity.HIGH,
                f"{opcode} calls a computed object (not a named global): a gadget chain",
                offset,
            )
        return _Call(func, args)

    def check_ufunc(self, g: _Global, args: object, offset: int) -> None:
        if isinstance(args, tuple):
            args = tuple(_text(a, offset) for a in args)
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

    # -- the loop ----------------------------------------------------------------------------
    def run(self, pos: int) -> int:
        data = self.data
        n = len(data)
        stack = self.stack
        push = stack.append
        pop = stack.pop
        marks = self.marks
        fence = marks[-1] if marks else 0
        memo = self.memo
        max_stack = self.limits.max_pickle_stack
        max_memo = self.limits.max_memo
        next_check = pos + (1 << 20)
        dec = _decode
        track = self.track_dicts
        while True:
            if pos > next_check:
                self.deadline.check()
                next_check = pos + (1 << 20)
                if len(stack) > max_stack or len(memo) > max_memo:
                    raise MalformedArtifact("pickle stack or memo exceeds the scanner's limit")
            op = data[pos]
            # Hot path: short strings (kept as undecoded bytes) and the memo store that follows them.
            if op == SHORT_BINUNICODE:
                a = pos + 2
                pos = a + data[pos + 1]
                push(data[a:pos])
                if data[pos] == MEMOIZE:
                    memo[len(memo)] = stack[-1]
                    pos += 1
                continue
            start = pos
            k = _KIND[op]
            if k == 1:
                if len(stack) <= fence:
                    raise MalformedArtifact(f"memo store on an empty stack at offset {pos}")
                if op == MEMOIZE:
                    memo[len(memo)] = stack[-1]
                    pos += 1
                elif op == BINPUT:
                    memo[data[pos + 1]] = stack[-1]
                    pos += 2
                else:
                    memo[int.from_bytes(data[pos + 1 : pos + 5], "little")] = stack[-1]
                    pos += 5
            elif op == BININT1 and (track or data[pos + 2] != BININT1):
                push(data[pos + 1])
                pos += 2
            elif k == 2:
                if op == BINGET:
                    idx = data[pos + 1]
                    pos += 2
                else:
                    idx = int.from_bytes(data[pos + 1 : pos + 5], "little")
                    pos += 5
                try:
                    push(memo[idx])
                except KeyError:
                    raise MalformedArtifact(f"memo key {idx} not found at offset {start}") from None
            elif k == 3:
                rx, width = _RUNS[op]
                if not track and pos + width < n and data[pos + width] == op:
                    m = rx.match(data, pos)
                    assert m is not None
                    count = (m.end() - pos) // width
                    stack.extend([UNK] * count)
                    pos = m.end()
                elif op == BININT1:
                    push(data[pos + 1])
                    pos += 2
                elif op == BININT2:
                    push(data[pos + 1] | data[pos + 2] << 8)
                    pos += 3
                elif op == BININT:
                    push(int.from_bytes(data[pos + 1 : pos + 5], "little", signed=True))
                    pos += 5
                else:
                    push(UNK)
                    pos += 9
            elif k == 7:
                marks.append(len(stack))
                fence = len(stack)
                pos += 1
            elif k == 11:
                cnt = op - 0x84
                if len(stack) - cnt < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                t = tuple(stack[-cnt:])
                del stack[-cnt:]
                push(t)
                pos += 1
            elif k == 10:
                push(UNK if op in (EMPTY_LIST, EMPTY_SET) else _CONST[op])
                pos += 1
            elif k == 9:
                push({} if track else UNK)
                pos += 1
            elif k == 8:
                push(())
                pos += 1
            elif k == 13:
                if not marks:
                    raise MalformedArtifact(f"mark not found at offset {pos}")
                mk = marks.pop()
                fence = marks[-1] if marks else 0
                if mk == 0 or len(stack) < mk:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                target = stack[mk - 1]
                if track and op == SETITEMS and type(target) is dict and len(target) < 64:
                    target.update(_small_dict(stack[mk:]))
                del stack[mk:]
                pos += 1
            elif k == 14:
                cnt = 2 if op == SETITEM else 1
                if len(stack) - cnt <= fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                if cnt == 2:
                    value = pop()
                    key = pop()
                    target = stack[-1]
                    if track and type(target) is dict and len(target) < 64 and _hashable(key):
                        target[key] = value
                else:
                    pop()
                pos += 1
            elif k == 12:
                if not marks:
                    raise MalformedArtifact(f"mark not found at offset {pos}")
                mk = marks.pop()
                fence = marks[-1] if marks else 0
                items = stack[mk:]
                del stack[mk:]
                if op == TUPLE:
                    push(tuple(items))
                elif op == DICT and track:
                    push(_small_dict(items))
                else:
                    push(UNK)
                pos += 1
            elif k == 5:
                ln = int.from_bytes(data[pos + 1 : pos + 5], "little", signed=op == BINSTRING)
                if ln < 0:
                    raise MalformedArtifact(f"negative string length at offset {start}")
                pos += 5 + ln
                if pos > n:
                    raise MalformedArtifact(f"string runs past the end of the data at offset {start}")
                if op == BINUNICODE:
                    push(data[start + 5 : pos] if ln <= _MAX_DECODED_STR else UNK)
                else:
                    push(UNK if op == BINBYTES or ln > _MAX_DECODED_STR else dec(data, start + 5, pos, op))
            elif k == 4:
                ln = data[pos + 1]
                pos += 2 + ln
                if pos > n:
                    raise MalformedArtifact(f"string runs past the end of the data at offset {start}")
                push(UNK if op == SHORT_BINBYTES else dec(data, start + 2, pos, op))
            elif k == 6:
                ln = int.from_bytes(data[pos + 1 : pos + 9], "little")
                pos += 9 + ln
                if pos > n:
                    raise MalformedArtifact(f"payload runs past the end of the data at offset {start}")
                push(data[start + 9 : pos] if op == BINUNICODE8 and ln <= _MAX_DECODED_STR else UNK)
            elif op == STACK_GLOBAL:
                if len(stack) - 2 < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                name = _text(pop(), pos)
                module = _text(pop(), pos)
                if type(module) is str and type(name) is str:
                    push(self.on_global(module, name, pos, "STACK_GLOBAL"))
                else:
                    self.flag(
                        "pickle.dynamic_global",
                        Severity.HIGH,
                        "STACK_GLOBAL imports a name computed at load time (not constant strings): "
                        "the target cannot be verified",
                        pos,
                    )
                    push(_Global("?", "?", pos))
                pos += 1
            elif op in (GLOBAL, INST):
                module, name, pos = _two_lines(data, pos + 1, start)
                g = self.on_global(module, name, start, "GLOBAL" if op == GLOBAL else "INST")
                if op == INST:
                    if not marks:
                        raise MalformedArtifact(f"mark not found at offset {start}")
                    mk = marks.pop()
                    fence = marks[-1] if marks else 0
                    inst_args = tuple(stack[mk:])
                    del stack[mk:]
                    push(self.on_call(g, inst_args, start, "INST"))
                else:
                    push(g)
            elif op in (REDUCE, NEWOBJ):
                if len(stack) - 2 < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                args = pop()
                func = pop()
                push(self.on_call(func, args, pos, "REDUCE" if op == REDUCE else "NEWOBJ"))
                pos += 1
            elif op == NEWOBJ_EX:
                if len(stack) - 3 < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                pop()
                args = pop()
                func = pop()
                push(self.on_call(func, args, pos, "NEWOBJ_EX"))
                pos += 1
            elif op == OBJ:
                if not marks:
                    raise MalformedArtifact(f"mark not found at offset {pos}")
                mk = marks.pop()
                fence = marks[-1] if marks else 0
                items = stack[mk:]
                del stack[mk:]
                if not items:
                    raise MalformedArtifact(f"OBJ without a class at offset {pos}")
                push(self.on_call(items[0], tuple(items[1:]), pos, "OBJ"))
                pos += 1
            elif op == BUILD:
                if len(stack) - 2 < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                state = pop()
                obj = stack[-1]
                if isinstance(obj, _Call):
                    obj.state = state
                    if isinstance(obj.func, _Global) and obj.func.name == "NumpyArrayWrapper":
                        self.out.wrappers.append(obj)
                        self.out.end = pos + 1
                        return -1  # joblib: raw array data follows; the caller resumes after it
                elif isinstance(obj, _Global):
                    self.flag(
                        "pickle.attribute_write",
                        Severity.HIGH,
                        f"BUILD sets attributes on the imported object {obj.module}.{obj.name} "
                        "(monkey-patching at load time)",
                        pos,
                    )
                pos += 1
            elif op == STOP:
                if len(stack) <= fence:
                    raise MalformedArtifact(f"STOP on an empty stack at offset {pos}")
                return pos + 1
            elif op == PROTO:
                if data[pos + 1] > 5:
                    raise MalformedArtifact(f"unsupported pickle protocol {data[pos + 1]} at offset {pos}")
                pos += 2
            elif op == FRAME:
                pos += 9
            elif op == POP:
                if len(stack) > fence:
                    pop()
                elif marks:
                    marks.pop()
                    fence = marks[-1] if marks else 0
                else:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                pos += 1
            elif op == POP_MARK:
                if not marks:
                    raise MalformedArtifact(f"mark not found at offset {pos}")
                del stack[marks.pop() :]
                fence = marks[-1] if marks else 0
                pos += 1
            elif op == DUP:
                if len(stack) <= fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                push(stack[-1])
                pos += 1
            elif op == BINPERSID:
                if len(stack) <= fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                pop()
                push(UNK)
                pos += 1
            elif op in (LONG1, LONG4):
                w = 1 if op == LONG1 else 4
                ln = int.from_bytes(data[pos + 1 : pos + 1 + w], "little", signed=op == LONG4)
                if ln < 0:
                    raise MalformedArtifact(f"negative length at offset {pos}")
                pos += 1 + w + ln
                push(UNK)
            elif op in _LINE_OPS:
                line, pos = _line(data, pos + 1, start)
                if op in (PUT, GET):
                    try:
                        idx = int(line)
                    except ValueError:
                        raise MalformedArtifact(f"bad memo index at offset {start}") from None
                    if op == PUT:
                        if len(stack) <= fence:
                            raise MalformedArtifact(f"memo store on an empty stack at offset {start}")
                        memo[idx] = stack[-1]
                    elif idx in memo:
                        push(memo[idx])
                    else:
                        raise MalformedArtifact(f"memo key {idx} not found at offset {start}")
                elif op == STRING:
                    push(_string_line(line, start))
                elif op == UNICODE:
                    push(_unicode_line(line, start))
                elif op == INT:
                    push({b"00": False, b"01": True}.get(line, UNK))
                else:  # FLOAT, LONG, PERSID
                    push(UNK)
            elif op in (EXT1, EXT2, EXT4):
                w = {EXT1: 1, EXT2: 2, EXT4: 4}[op]
                code = int.from_bytes(data[pos + 1 : pos + 1 + w], "little")
                self.flag(
                    "pickle.extension_code",
                    Severity.HIGH,
                    f"EXT{w} loads global #{code} from the copyreg extension registry (cannot be verified)",
                    pos,
                )
                push(_Global("?ext", str(code), pos))
                pos += 1 + w
            elif op == NEXT_BUFFER:
                push(UNK)
                pos += 1
            elif op == READONLY_BUFFER:
                pos += 1
            else:
                raise MalformedArtifact(f"unknown pickle opcode 0x{op:02x} at offset {pos}")

    def finish(self) -> None:
        for g in self.ufunc_calls:
            if id(g) not in self.verified:
                self.flag(
                    "pickle.dangerous_global",
                    Severity.HIGH,
                    f"{g.module}.{g.name} is imported but not called with constant numpy names",
                    g.offset,
                )


_CONST: dict[int, object] = {NONE: None, NEWTRUE: True, NEWFALSE: False}
_LINE_OPS = frozenset((PUT, GET, STRING, UNICODE, INT, FLOAT, LONG, PERSID))


def _hashable(v: object) -> bool:
    return type(v) in (str, bytes, int, bool, tuple) or v is None


def _text(v: object, offset: int) -> object:
    """A string value as ``str``: UTF-8 strings are kept as undecoded bytes until needed."""
    if type(v) is bytes:
        try:
            return v.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise MalformedArtifact(f"invalid UTF-8 string before offset {offset}") from None
    return v


def _small_dict(items: list[object]) -> dict[object, object]:
    if len(items) > 128 or len(items) % 2:
        return {}
    return {k: v for k, v in zip(items[::2], items[1::2], strict=True) if _hashable(k)}


def _decode(data: bytes, a: int, b: int, op: int) -> object:
    raw = bytes(data[a:b])
    if op in (SHORT_BINSTRING, BINSTRING):
        return raw.decode("latin-1")
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise MalformedArtifact(f"invalid UTF-8 string at offset {a}") from None


def _line(data: bytes, pos: int, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos, pos + 65536)
    if end < 0:
        raise MalformedArtifact(f"unterminated text argument at offset {start}")
    return bytes(data[pos:end]), end + 1


def _two_lines(data: bytes, pos: int, start: int) -> tuple[str, str, int]:
    a, pos = _line(data, pos, start)
    b, pos = _line(data, pos, start)
    try:
        return a.decode("utf-8"), b.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise MalformedArtifact(f"non-UTF-8 global name at offset {start}") from None


def _string_line(line: bytes, start: int) -> object:
    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
        raise MalformedArtifact(f"STRING argument is not quoted at offset {start}")
    try:
        return codecs.escape_decode(line[1:-1])[0].decode("latin-1")
    except (ValueError, UnicodeDecodeError):
        raise MalformedArtifact(f"bad STRING escape at offset {start}") from None


def _unicode_line(line: bytes, start: int) -> object:
    try:
        return line.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise MalformedArtifact(f"bad UNICODE argument at offset {start}") from None


def scan_pickle_stream(
    data: bytes,
    *,
    location: str,
    limits: ScanLimits,
    deadline: Deadline,
    start: int = 0,
    max_pickles: int | None = None,
    joblib: bool = False,
) -> PickleScan:
    """Simulate every pickle in ``data`` from ``start`` and collect findings.

    Consecutive pickles (``pickle.dump`` called repeatedly, the legacy PyTorch layout) are all
    analysed, up to ``max_pickles``. Bytes after the last pickle that do not parse as one are
    reported (they are not analysed). :class:`MalformedArtifact` when the first pickle does not parse.
    """
    out = PickleScan()
    pos = start
    n = len(data)
    while pos < n and (max_pickles is None or out.pickles < max_pickles):
        sim = _Sim(data, location, limits, deadline, out)
        sim.track_dicts = joblib
        try:
            end = _run_with_joblib(sim, pos, joblib)
        except IndexError:
            err = MalformedArtifact(f"pickle truncated (an argument runs past the end) after offset {pos}")
            if out.pickles == 0:
                raise err from None
            _trailing(out, location, n - pos, str(err))
            break
        except NeedsJoblib:
            raise
        except MalformedArtifact as e:
            if out.pickles == 0:
                raise
            _trailing(out, location, n - pos, e.message)
            break
        except RecursionError:
            raise MalformedArtifact("pickle nesting too deep") from None
        sim.finish()
        out.pickles += 1
        out.end = pos = end
    return out


def _run_with_joblib(sim: _Sim, pos: int, joblib: bool) -> int:
    end = sim.run(pos)
    while end == -1:  # a joblib NumpyArrayWrapper: skip its inline array, then continue the same pickle
        if not joblib:
            raise NeedsJoblib("joblib inline array found: rescan with dict tracking")
        from bastion.scanners.model.joblib_arrays import skip_inline_array

        resume, nested = skip_inline_array(sim.data, sim.out.end, sim.out.wrappers[-1])
        if nested:  # object arrays are stored as a nested pickle
            inner = scan_pickle_stream(
                sim.data,
                location=sim.location,
                limits=sim.limits,
                deadline=sim.deadline,
                start=resume,
                max_pickles=1,
            )
            sim.out.findings.extend(inner.findings)
            sim.out.globals.update(inner.globals)
            resume = inner.end
        end = sim.resume(resume)
    return end


def _trailing(out: PickleScan, location: str, size: int, why: str) -> None:
    out.findings.append(
        make_finding(
            "pickle.trailing_data",
            Severity.MEDIUM,
            f"{size} bytes after the last complete pickle do not parse as a pickle ({why}); "
            "a loader that reads further would see unanalysed data",
            location=f"{location}@{out.end}",
            hint="Inspect the file by hand; legitimate pickles end at their STOP opcode.",
            controls=MODEL_INTEGRITY,
            metadata={"offset": out.end},
        )
    )
