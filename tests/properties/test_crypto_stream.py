"""Any single flipped bit anywhere in an encrypted file (header or any segment) is detected."""

from __future__ import annotations

import io
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.crypto.envelope import object_context, seal, unseal
from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring
from bastion.crypto.stream import HEADER_SIZE, decrypt_stream, encrypt_stream
from bastion.errors import CryptoError

SEG = 1024


def _setup() -> tuple[LocalKeyring, bytes, bytes]:
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="bastion-prop-"))
    atexit.register(shutil.rmtree, d, True)
    ring = LocalKeyring(d / "ring.json", "pw", scrypt_n=MIN_SCRYPT_N)
    ring.create_key("k1")
    data = os.urandom(3 * SEG + 100)  # three full segments and a short last one
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data), out, provider=ring, key_id="k1", object_id="o", purpose="p", segment_size=SEG
    )
    return ring, data, out.getvalue()


RING, DATA, BLOB = _setup()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bit=st.integers(min_value=0, max_value=len(BLOB) * 8 - 1))
def test_any_single_bit_flip_is_detected(bit: int) -> None:
    tampered = bytearray(BLOB)
    tampered[bit // 8] ^= 1 << (bit % 8)
    out = io.BytesIO()
    try:
        decrypt_stream(io.BytesIO(bytes(tampered)), out, provider=RING)
    except CryptoError:
        pass
    else:
        raise AssertionError(f"flipped bit {bit} (byte {bit // 8}) was not detected")
    # Nothing unauthenticated was released: what was written is a whole-segment prefix of the truth.
    released = out.getvalue()
    assert DATA.startswith(released)
    assert len(released) % SEG == 0
    if bit // 8 < HEADER_SIZE:
        assert released == b""


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=200),
    bit=st.integers(min_value=0),
)
def test_sealed_values_detect_any_bit_flip(plaintext: bytes, bit: int) -> None:
    key = bytes(32)
    aad = object_context("content", "subject-1", "prompt")
    sealed = seal(key, plaintext, aad)
    assert unseal(key, sealed, aad) == plaintext
    tampered = bytearray(sealed)
    i = bit % (len(sealed) * 8)
    tampered[i // 8] ^= 1 << (i % 8)
    try:
        unseal(key, bytes(tampered), aad)
    except CryptoError:
        return
    raise AssertionError(f"flipped bit {i} not detected")


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=0, max_value=5 * SEG), seg=st.sampled_from([1024, 2048, 4096]))
def test_round_trip_any_size(size: int, seg: int) -> None:
    data = os.urandom(size)
    ct = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data), ct, provider=RING, key_id="k1", object_id="x", purpose="y", segment_size=seg
    )
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ct.getvalue()), out, provider=RING, expected_object_id="x")
    assert out.getvalue() == data
