"""joblib's inline NumPy arrays: the raw bytes written between pickle opcodes, skipped unread.

joblib pickles a ``NumpyArrayWrapper`` and writes the array data right after its BUILD opcode
(an alignment padding byte and padding, then ``count * itemsize`` bytes); object arrays are written
as a nested pickle instead. The size is computed from the wrapper's simulated state; a state that
cannot be read exactly is an error (fail closed), never a guess.
"""

from __future__ import annotations

import re
from math import prod

from bastion.scanners.model.interface import MalformedArtifact

_DTYPE_STR = re.compile(r"[<>|=]?([biufcmMOSUV])(\d*)\Z")


def _state_of(wrapper: object) -> dict[object, object]:
    state = getattr(wrapper, "state", None)
    if not isinstance(state, dict):
        raise MalformedArtifact("joblib array wrapper without a readable state")
    return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k): v for k, v in state.items()}


def _itemsize(dtype: object) -> tuple[int, bool]:
    args = getattr(dtype, "args", None)
    state = getattr(dtype, "state", None)
    if not (isinstance(args, tuple) and args and isinstance(args[0], str | bytes)):
        raise MalformedArtifact("joblib array dtype cannot be read")
    name = args[0].decode("ascii", "replace") if isinstance(args[0], bytes) else args[0]
    m = _DTYPE_STR.match(name)
    if not m:
        raise MalformedArtifact(f"unsupported joblib array dtype {name!r}")
    kind, digits = m.group(1), m.group(2)
    if kind == "O":
        return 8, True
    if isinstance(state, tuple) and len(state) >= 6:
        if state[3] is not None:  # structured dtype: fields map names to (dtype, offset)
            fields = state[4]
            if not isinstance(fields, dict) or not fields:
                raise MalformedArtifact("structured joblib array dtype cannot be read")
            for value in fields.values():
                if not (isinstance(value, tuple) and value):
                    raise MalformedArtifact("structured joblib array field cannot be read")
                _, has_object = _itemsize(value[0])
                if has_object:
                    return 8, True
        if isinstance(state[5], int) and state[5] > 0:
            return state[5], False
    if not digits:
        raise MalformedArtifact(f"joblib array dtype {name!r} has no size")
    size = int(digits)
    return (size * 4 if kind == "U" else size), False


def skip_inline_array(data: bytes, pos: int, wrapper: object) -> tuple[int, bool]:
    """The offset after the array data that starts at ``pos``, and whether it is a nested pickle."""
    state = _state_of(wrapper)
    shape = state.get("shape")
    if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
        raise MalformedArtifact("joblib array shape cannot be read")
    itemsize, is_object = _itemsize(state.get("dtype"))
    if is_object:
        return pos, True
    count = prod(shape) if shape else 1
    if "numpy_array_alignment_bytes" in state and state["numpy_array_alignment_bytes"] is not None:
        if pos >= len(data):
            raise MalformedArtifact("joblib array truncated before its padding")
        pos += 1 + data[pos]
    end = pos + count * itemsize
    if end > len(data):
        raise MalformedArtifact("joblib array data runs past the end of the file")
    return end, False
