"""The pickle stack machine: CPython's unpickler semantics without building any object.

:class:`PickleMachine` walks the opcodes with the same stack, mark and memo rules as
``pickle.Unpickler`` and hands every import, call and attribute write to a
:class:`~bastion.scanners.model.pickle_findings.PickleJudge`. Plain data is the ``UNK`` sentinel;
strings up to :data:`MAX_DECODED_STR` bytes are kept as undecoded bytes (decoded only when they
reach ``STACK_GLOBAL`` or a ufunc check), so computed names and memo tricks still resolve.

Speed: the frequent opcodes are tested first in one loop over integer opcode bytes, a memo store
that follows a push is done in the same step, and runs of the same numeric opcode are consumed
by one regular-expression match. Bounds: the deadline, stack and memo sizes are checked every
MiB of input; an argument past the end of the data raises ``IndexError`` (the caller reports
a truncated pickle).
"""

from __future__ import annotations

import re

from bastion.scanners.model.interface import Deadline, MalformedArtifact, ScanLimits
from bastion.scanners.model.pickle_findings import UNK, CallResult, ImportedGlobal, PickleJudge
from bastion.scanners.model.pickle_opcodes import (
    APPEND,
    BINBYTES,
    BINBYTES8,
    BINFLOAT,
    BININT,
    BININT1,
    BININT2,
    BINPERSID,
    BINSTRING,
    BINUNICODE8,
    BUILD,
    BYTEARRAY8,
    DICT,
    DUP,
    EXT1,
    EXT2,
    EXT4,
    FROZENSET,
    GET,
    GLOBAL,
    INST,
    INT,
    LINE_OPS,
    LIST,
    LONG1,
    LONG4,
    MAX_DECODED_STR,
    NEWFALSE,
    NEWOBJ,
    NEWOBJ_EX,
    NEWTRUE,
    NEXT_BUFFER,
    NONE,
    OBJ,
    POP,
    POP_MARK,
    PROTO,
    PUT,
    READONLY_BUFFER,
    REDUCE,
    SETITEM,
    SHORT_BINBYTES,
    SHORT_BINSTRING,
    STACK_GLOBAL,
    STRING,
    TUPLE,
    UNICODE,
    as_text,
    decode_string,
    parse_string_line,
    parse_unicode_line,
    read_global_name,
    read_line,
)  # fmt: skip

_CHECK_EVERY = 1 << 20  # bytes of input between deadline / stack / memo checks
_RUNS = {
    BININT1: (re.compile(rb"(?:K[\x00-\xff])+"), 2),
    BININT2: (re.compile(rb"(?:M[\x00-\xff]{2})+"), 3),
    BININT: (re.compile(rb"(?:J[\x00-\xff]{4})+"), 5),
    BINFLOAT: (re.compile(rb"(?:G[\x00-\xff]{8})+"), 9),
}
_CONST: dict[int, object] = {NONE: None, NEWTRUE: True, NEWFALSE: False}
# Tuples of plain data are shared, not kept one per TUPLE opcode: millions of new tuples held in the
# memo would make the cyclic garbage collector walk them again and again (a quarter of the run).
_UNK_TUPLES: tuple[tuple[object, ...], ...] = tuple((UNK,) * n for n in range(4))
_EXT_WIDTH = {EXT1: 1, EXT2: 2, EXT4: 4}
_CALL_NAMES = {REDUCE: "REDUCE", NEWOBJ: "NEWOBJ"}


class PickleMachine:
    """One pickle's stack, marks and memo; :meth:`run` returns the offset after its ``STOP``."""

    __slots__ = ("data", "deadline", "judge", "limits", "marks", "memo", "stack", "track_dicts")

    def __init__(
        self, data: bytes, judge: PickleJudge, limits: ScanLimits, deadline: Deadline, *, track_dicts: bool
    ) -> None:
        self.data = data
        self.judge = judge
        self.limits = limits
        self.deadline = deadline
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.track_dicts = track_dicts  # dict contents matter only for joblib's array wrappers

    def run(self, pos: int) -> int:
        """Simulate from ``pos`` to the ``STOP``; -1 at a joblib array wrapper (resume after it).

        Opcodes are compared as integer literals (named in the comments), most frequent first.
        ``stack.append`` is called directly: mypyc compiles it to a C call, a bound-method alias it
        could not.
        """
        data = self.data
        n = len(data)
        stack = self.stack
        marks = self.marks
        memo = self.memo
        track = self.track_dicts
        judge = self.judge
        fence = marks[-1] if marks else 0  # the stack may not shrink below the innermost mark
        check_at = pos + _CHECK_EVERY
        while True:
            if pos > check_at:
                self._check_limits()
                check_at = pos + _CHECK_EVERY
            op = data[pos]
            if op == 0x68:  # BINGET
                try:
                    stack.append(memo[data[pos + 1]])
                except KeyError:
                    raise _missing(data[pos + 1], pos) from None
                pos += 2
                continue
            if op == 0x94:  # MEMOIZE
                if len(stack) <= fence:
                    raise MalformedArtifact(f"memo store on an empty stack at offset {pos}")
                memo[len(memo)] = stack[-1]
                pos += 1
                continue
            if op == 0x8C:  # SHORT_BINUNICODE: kept as undecoded bytes
                a = pos + 2
                pos = a + data[pos + 1]
                stack.append(data[a:pos])
            elif op == 0x28:  # MARK
                fence = len(stack)
                marks.append(fence)
                pos += 1
                continue
            elif op == 0x4B:  # BININT1
                if track:
                    stack.append(data[pos + 1])
                elif data[pos + 2] == 0x4B:
                    pos = self._numeric_run(op, pos)
                    continue
                else:
                    stack.append(UNK)
                pos += 2
                continue
            elif op == 0x75 or op == 0x65 or op == 0x90:
                try:
                    mk = marks.pop()
                except IndexError:
                    raise MalformedArtifact(f"mark not found at offset {pos}") from None
                fence = marks[-1] if marks else 0
                if mk == 0 or len(stack) < mk:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                if track and op == 0x75:
                    _fill_dict(stack[mk - 1], stack[mk:])
                del stack[mk:]
                pos += 1
                continue
            elif op == 0x7D or op == 0x5D or op == 0x8F:
                stack.append({} if track and op == 0x7D else UNK)
                pos += 1
                op = data[pos]
                if op == 0x94:  # MEMOIZE
                    memo[len(memo)] = stack[-1]
                    pos += 1
                    op = data[pos]
                if op == 0x28:  # MARK: the container's items follow
                    fence = len(stack)
                    marks.append(fence)
                    pos += 1
                continue
            elif op == 0x4A or op == 0x4D or op == 0x47:
                width = 5 if op == 0x4A else 3 if op == 0x4D else 9
                if track and op != 0x47:
                    stack.append(int.from_bytes(data[pos + 1 : pos + width], "little", signed=op == 0x4A))
                elif data[pos + width] == op:
                    pos = self._numeric_run(op, pos)
                    continue
                else:
                    stack.append(UNK)
                pos += width
                continue
            elif op == 0x58:  # BINUNICODE
                ln = _u32(data, pos + 1)
                a = pos + 5
                pos = a + ln
                if pos > n:
                    raise MalformedArtifact(f"string runs past the end of the data at offset {a - 5}")
                stack.append(data[a:pos] if ln <= MAX_DECODED_STR else UNK)
            elif op == 0x72 or op == 0x71:
                if len(stack) <= fence:
                    raise MalformedArtifact(f"memo store on an empty stack at offset {pos}")
                if op == 0x71:
                    memo[data[pos + 1]] = stack[-1]
                    pos += 2
                else:
                    memo[_u32(data, pos + 1)] = stack[-1]
                    pos += 5
                continue
            elif op == 0x6A:  # LONG_BINGET
                idx = _u32(data, pos + 1)
                try:
                    stack.append(memo[idx])
                except KeyError:
                    raise _missing(idx, pos) from None
                pos += 5
                continue
            elif 0x85 <= op <= 0x87:  # TUPLE1, TUPLE2, TUPLE3
                cnt = op - 0x84
                if len(stack) - cnt < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                # Built from the items directly (no temporary list); plain-data tuples are shared.
                x1: object = stack[-1]
                if cnt == 1:
                    stack[-1] = _UNK_TUPLES[1] if x1 is UNK else (x1,)
                elif cnt == 2:
                    x2: object = stack[-2]
                    del stack[-2:]
                    stack.append(_UNK_TUPLES[2] if x1 is UNK and x2 is UNK else (x2, x1))
                else:
                    x2 = stack[-2]
                    x3: object = stack[-3]
                    del stack[-3:]
                    stack.append(_UNK_TUPLES[3] if x1 is UNK and x2 is UNK and x3 is UNK else (x3, x2, x1))
                pos += 1
            elif op == 0x52 or op == 0x81:
                if len(stack) - 2 < fence:
                    raise MalformedArtifact(f"stack underflow at offset {pos}")
                args = stack.pop()
                func = stack[-1]
                if type(func) is ImportedGlobal and not judge.ufunc_calls:
                    # A named global with no call-time check pending: what judge.on_call returns.
                    stack[-1] = CallResult(func, args)
                else:
                    stack[-1] = judge.on_call(func, args, pos, "REDUCE" if op == 0x52 else "NEWOBJ")
                pos += 1
            elif op == 0x4E or op == 0x88 or op == 0x89:
                stack.append(_CONST[op])
                pos += 1
                continue
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
                pos += 1
            elif op == 0x2E:  # STOP
                if len(stack) <= fence:
                    raise MalformedArtifact(f"STOP on an empty stack at offset {pos}")
                return pos + 1
            elif op == 0x95:  # FRAME
                pos += 9
                continue
            else:
                pos = self._rare(op, pos)
                if pos < 0:
                    return -1
                fence = marks[-1] if marks else 0
                continue
            # The value just pushed is usually memoised next: store it in the same step.
            op = data[pos]
            if op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
                pos += 1
            elif op == 0x72:  # LONG_BINPUT
                memo[_u32(data, pos + 1)] = stack[-1]
                pos += 5
            elif op == 0x71:  # BINPUT
                memo[data[pos + 1]] = stack[-1]
                pos += 2

    def _check_limits(self) -> None:
        self.deadline.check()
        if len(self.stack) > self.limits.max_pickle_stack or len(self.memo) > self.limits.max_memo:
            raise MalformedArtifact("pickle stack or memo exceeds the scanner's limit")

    def _numeric_run(self, op: int, pos: int) -> int:
        rx, width = _RUNS[op]
        m = rx.match(self.data, pos)
        assert m is not None
        self.stack.extend([UNK] * ((m.end() - pos) // width))
        return m.end()

    def _pop_mark(self, pos: int) -> list[object]:
        """Pop the innermost mark and return the items above it."""
        if not self.marks:
            raise MalformedArtifact(f"mark not found at offset {pos}")
        mk = self.marks.pop()
        items = self.stack[mk:]
        del self.stack[mk:]
        return items

    def _underflow(self, need: int, pos: int) -> None:
        fence = self.marks[-1] if self.marks else 0
        if len(self.stack) - need < fence:
            raise MalformedArtifact(f"stack underflow at offset {pos}")

    def _rare(self, op: int, pos: int) -> int:
        """Every other opcode; returns the next offset (-1 at a joblib array wrapper)."""
        data = self.data
        stack = self.stack
        push = stack.append
        start = pos
        if op in (SHORT_BINBYTES, SHORT_BINSTRING):
            pos += 2 + data[pos + 1]
            if pos > len(data):
                raise MalformedArtifact(f"string runs past the end of the data at offset {start}")
            push(UNK if op == SHORT_BINBYTES else decode_string(data, start + 2, pos, op))
        elif op in (BINBYTES, BINSTRING):
            ln = int.from_bytes(data[pos + 1 : pos + 5], "little", signed=op == BINSTRING)
            if ln < 0:
                raise MalformedArtifact(f"negative string length at offset {start}")
            pos += 5 + ln
            if pos > len(data):
                raise MalformedArtifact(f"string runs past the end of the data at offset {start}")
            push(UNK if op == BINBYTES or ln > MAX_DECODED_STR else decode_string(data, start + 5, pos, op))
        elif op in (BINUNICODE8, BINBYTES8, BYTEARRAY8):
            ln = int.from_bytes(data[pos + 1 : pos + 9], "little")
            pos += 9 + ln
            if pos > len(data):
                raise MalformedArtifact(f"payload runs past the end of the data at offset {start}")
            push(data[start + 9 : pos] if op == BINUNICODE8 and ln <= MAX_DECODED_STR else UNK)
        elif op in (TUPLE, LIST, DICT, FROZENSET):
            items = self._pop_mark(pos)
            if op == TUPLE:
                push(tuple(items))
            elif op == DICT and self.track_dicts:
                push(_small_dict(items))
            else:
                push(UNK)
            pos += 1
        elif op in (SETITEM, APPEND):
            cnt = 2 if op == SETITEM else 1
            fence = self.marks[-1] if self.marks else 0
            if len(stack) - cnt <= fence:
                raise MalformedArtifact(f"stack underflow at offset {pos}")
            if cnt == 2:
                value = stack.pop()
                key = stack.pop()
                if self.track_dicts:
                    _fill_dict(stack[-1], [key, value])
            else:
                stack.pop()
            pos += 1
        elif op == STACK_GLOBAL:
            self._underflow(2, pos)
            name = as_text(stack.pop(), pos)
            module = as_text(stack.pop(), pos)
            if type(module) is str and type(name) is str:
                push(self.judge.on_global(module, name, pos, "STACK_GLOBAL"))
            else:
                push(self.judge.on_dynamic_global(pos))
            pos += 1
        elif op in (GLOBAL, INST):
            module, name, pos = read_global_name(data, pos + 1, start)
            g = self.judge.on_global(module, name, start, "GLOBAL" if op == GLOBAL else "INST")
            if op == INST:
                inst_args = tuple(self._pop_mark(start))
                push(self.judge.on_call(g, inst_args, start, "INST"))
            else:
                push(g)
        elif op == NEWOBJ_EX:
            self._underflow(3, pos)
            stack.pop()
            args = stack.pop()
            push(self.judge.on_call(stack.pop(), args, pos, "NEWOBJ_EX"))
            pos += 1
        elif op == OBJ:
            items = self._pop_mark(pos)
            if not items:
                raise MalformedArtifact(f"OBJ without a class at offset {pos}")
            push(self.judge.on_call(items[0], tuple(items[1:]), pos, "OBJ"))
            pos += 1
        elif op == BUILD:
            return self._build(pos)
        elif op == PROTO:
            if data[pos + 1] > 5:
                raise MalformedArtifact(f"unsupported pickle protocol {data[pos + 1]} at offset {pos}")
            pos += 2
        elif op == POP:
            fence = self.marks[-1] if self.marks else 0
            if len(stack) > fence:
                stack.pop()
            elif self.marks:
                self.marks.pop()
            else:
                raise MalformedArtifact(f"stack underflow at offset {pos}")
            pos += 1
        elif op == POP_MARK:
            self._pop_mark(pos)
            pos += 1
        elif op == DUP:
            self._underflow(1, pos)
            push(stack[-1])
            pos += 1
        elif op == BINPERSID:
            self._underflow(1, pos)
            stack[-1] = UNK
            pos += 1
        elif op in (LONG1, LONG4):
            w = 1 if op == LONG1 else 4
            ln = int.from_bytes(data[pos + 1 : pos + 1 + w], "little", signed=op == LONG4)
            if ln < 0:
                raise MalformedArtifact(f"negative length at offset {pos}")
            pos += 1 + w + ln
            push(UNK)
        elif op in LINE_OPS:
            pos = self._line_op(op, pos)
        elif op in _EXT_WIDTH:
            w = _EXT_WIDTH[op]
            code = int.from_bytes(data[pos + 1 : pos + 1 + w], "little")
            push(self.judge.on_extension(w, code, pos))
            pos += 1 + w
        elif op == NEXT_BUFFER:
            push(UNK)
            pos += 1
        elif op == READONLY_BUFFER:
            pos += 1
        else:
            raise MalformedArtifact(f"unknown pickle opcode 0x{op:02x} at offset {pos}")
        return pos

    def _build(self, pos: int) -> int:
        self._underflow(2, pos)
        state = self.stack.pop()
        obj = self.stack[-1]
        if isinstance(obj, CallResult):
            obj.state = state
            if isinstance(obj.func, ImportedGlobal) and obj.func.name == "NumpyArrayWrapper":
                self.judge.out.wrappers.append(obj)
                self.judge.out.end = pos + 1
                return -1  # joblib: raw array data follows; the caller resumes after it
        elif isinstance(obj, ImportedGlobal):
            self.judge.on_attribute_write(obj, pos)
        return pos + 1

    def _line_op(self, op: int, start: int) -> int:
        line, pos = read_line(self.data, start + 1, start)
        if op in (PUT, GET):
            try:
                idx = int(line)
            except ValueError:
                raise MalformedArtifact(f"bad memo index at offset {start}") from None
            if op == PUT:
                fence = self.marks[-1] if self.marks else 0
                if len(self.stack) <= fence:
                    raise MalformedArtifact(f"memo store on an empty stack at offset {start}")
                self.memo[idx] = self.stack[-1]
            elif idx in self.memo:
                self.stack.append(self.memo[idx])
            else:
                raise MalformedArtifact(f"memo key {idx} not found at offset {start}")
        elif op == STRING:
            self.stack.append(parse_string_line(line, start))
        elif op == UNICODE:
            self.stack.append(parse_unicode_line(line, start))
        elif op == INT:
            self.stack.append({b"00": False, b"01": True}.get(line, UNK))
        else:  # FLOAT, LONG, PERSID
            self.stack.append(UNK)
        return pos


def _u32(data: bytes, at: int) -> int:
    """The unsigned little-endian 32-bit integer at ``at`` (IndexError past the end, like a slice would
    give a short read). Byte arithmetic instead of ``int.from_bytes(data[a:b])``: no slice object, and
    mypyc compiles it to native integer operations."""
    return data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)


def _missing(idx: int, pos: int) -> MalformedArtifact:
    return MalformedArtifact(f"memo key {idx} not found at offset {pos}")


def _hashable(v: object) -> bool:
    return type(v) in (str, bytes, int, bool, tuple) or v is None


def _small_dict(items: list[object]) -> dict[object, object]:
    if len(items) > 128 or len(items) % 2:
        return {}
    return {k: v for k, v in zip(items[::2], items[1::2], strict=True) if _hashable(k)}


def _fill_dict(target: object, items: list[object]) -> None:
    """joblib mode: keep the keys and values of small dicts (array wrapper states)."""
    if type(target) is dict and len(target) < 64:
        target.update(_small_dict(items))
