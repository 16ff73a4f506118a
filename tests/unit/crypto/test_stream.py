from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from bastion.crypto.envelope import IntegrityError
from bastion.crypto.files import decrypt_file, encrypt_file, rewrap_file
from bastion.crypto.keys.interface import KeyNotFoundError, KeyProviderError, UnwrapError
from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring
from bastion.crypto.stream import HEADER_SIZE, TAG, FormatError, decrypt_stream, encrypt_stream, parse_header
from bastion.errors import InputError

SEG = 1024


def enc(ring: LocalKeyring, data: bytes, object_id: str = "obj-1", purpose: str = "dataset") -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data),
        out,
        provider=ring,
        key_id="k1",
        object_id=object_id,
        purpose=purpose,
        segment_size=SEG,
    )
    return out.getvalue()


def dec(ring: LocalKeyring, blob: bytes, **kw: object) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, provider=ring, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def segments(blob: bytes) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    return [body[i : i + SEG + TAG] for i in range(0, len(body), SEG + TAG)]


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 7])
def test_round_trip_and_layout(keyring: LocalKeyring, size: int) -> None:
    data = os.urandom(size)
    blob = enc(keyring, data)
    n_segments = max(1, -(-size // SEG))
    assert len(blob) == HEADER_SIZE + size + n_segments * TAG
    assert dec(keyring, blob) == data
    header = parse_header(blob[:HEADER_SIZE])
    assert (header.object_id, header.purpose, header.segment_size) == ("obj-1", "dataset", SEG)


def test_two_encryptions_differ(keyring: LocalKeyring) -> None:
    data = b"x" * 5000
    assert enc(keyring, data)[HEADER_SIZE:] != enc(keyring, data)[HEADER_SIZE:]


def test_reordered_segments_detected(keyring: LocalKeyring) -> None:
    blob = enc(keyring, os.urandom(3 * SEG + 5))
    s = segments(blob)
    swapped = blob[:HEADER_SIZE] + s[1] + s[0] + s[2] + s[3]
    with pytest.raises(IntegrityError, match="segment 0"):
        dec(keyring, swapped)


def test_truncation_at_segment_boundary_detected(keyring: LocalKeyring) -> None:
    blob = enc(keyring, os.urandom(3 * SEG + 5))
    s = segments(blob)
    with pytest.raises(IntegrityError, match="segment 1"):
        dec(keyring, blob[:HEADER_SIZE] + s[0] + s[1])


def test_truncation_inside_segment_and_header_detected(keyring: LocalKeyring) -> None:
    blob = enc(keyring, os.urandom(2 * SEG))
    with pytest.raises(IntegrityError, match="segment 1"):
        dec(keyring, blob[:-1])
    with pytest.raises(IntegrityError, match="truncated in segment 0"):
        dec(keyring, blob[: HEADER_SIZE + 3])
    with pytest.raises(FormatError, match="too short"):
        dec(keyring, blob[:100])


def test_appended_segment_detected(keyring: LocalKeyring) -> None:
    blob = enc(keyring, os.urandom(2 * SEG))
    s = segments(blob)
    with pytest.raises(IntegrityError):
        dec(keyring, blob + s[0])


def test_not_an_encrypted_file(keyring: LocalKeyring) -> None:
    with pytest.raises(FormatError, match="bad magic"):
        dec(keyring, b"hello" * 1000)


def test_segments_from_another_file_detected(keyring: LocalKeyring) -> None:
    a = enc(keyring, os.urandom(2 * SEG))
    b = enc(keyring, os.urandom(2 * SEG))
    with pytest.raises(IntegrityError, match="segment 0"):
        dec(keyring, a[:HEADER_SIZE] + b[HEADER_SIZE:])


def test_expected_object_id_enforced(keyring: LocalKeyring) -> None:
    blob = enc(keyring, b"weights", object_id="model-a")
    assert dec(keyring, blob, expected_object_id="model-a") == b"weights"
    with pytest.raises(IntegrityError, match="belongs to object 'model-a', not 'model-b'"):
        dec(keyring, blob, expected_object_id="model-b")


def test_wrong_keyring_cannot_decrypt(keyring: LocalKeyring, tmp_path: Path) -> None:
    other = LocalKeyring(tmp_path / "other.json", "pw", scrypt_n=MIN_SCRYPT_N)
    other.create_key("k1")
    blob = enc(keyring, b"secret")
    with pytest.raises(UnwrapError, match="did not authenticate"):
        dec(other, blob)


def test_missing_key_version_named(keyring: LocalKeyring, tmp_path: Path) -> None:
    empty = LocalKeyring(tmp_path / "empty.json", "pw", scrypt_n=MIN_SCRYPT_N)
    with pytest.raises(KeyNotFoundError, match="'k1' version 1"):
        dec(empty, enc(keyring, b"secret"))


def test_provider_mismatch_named(keyring: LocalKeyring) -> None:
    class Other(LocalKeyring):
        name = "pkcs11"

    other = Other(keyring.path, "correct horse", scrypt_n=MIN_SCRYPT_N)
    with pytest.raises(KeyProviderError, match="held by key provider 'local'"):
        dec(other, enc(keyring, b"x"))


def test_decrypt_file_atomic_no_partial_output(keyring: LocalKeyring, tmp_path: Path) -> None:
    src = tmp_path / "plain.bin"
    data = os.urandom(5 * SEG)
    src.write_bytes(data)
    ct = tmp_path / "ct.bst"
    encrypt_file(src, ct, provider=keyring, key_id="k1", object_id="o", purpose="p", segment_size=SEG)
    blob = bytearray(ct.read_bytes())
    blob[-3] ^= 1  # last segment bad: four good segments precede it
    ct.write_bytes(blob)
    out = tmp_path / "out" / "plain.out"
    out.parent.mkdir()
    with pytest.raises(IntegrityError, match="segment 4"):
        decrypt_file(ct, out, provider=keyring)
    assert list(out.parent.iterdir()) == []


def test_file_output_refuses_overwrite_and_same_file(keyring: LocalKeyring, tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_bytes(b"a")
    dst = tmp_path / "b"
    dst.write_bytes(b"keep")
    with pytest.raises(InputError, match="exists"):
        encrypt_file(src, dst, provider=keyring, key_id="k1", object_id="o", purpose="p")
    assert dst.read_bytes() == b"keep"
    with pytest.raises(InputError, match="same file"):
        encrypt_file(src, src, provider=keyring, key_id="k1", object_id="o", purpose="p", overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        encrypt_file(
            tmp_path / "missing", tmp_path / "c", provider=keyring, key_id="k1", object_id="o", purpose="p"
        )


def test_rewrap_rewrites_header_only_and_survives_retirement(keyring: LocalKeyring, tmp_path: Path) -> None:
    src = tmp_path / "plain"
    data = os.urandom(3 * SEG)
    src.write_bytes(data)
    a, b = tmp_path / "a.bst", tmp_path / "b.bst"
    for p in (a, b):
        encrypt_file(src, p, provider=keyring, key_id="k1", object_id="o", purpose="p", segment_size=SEG)
    before = a.read_bytes()
    keyring.rotate("k1")
    header = rewrap_file(a, provider=keyring, key_id="k1")
    assert header.wrapped.version == 2
    after = a.read_bytes()
    assert after[HEADER_SIZE:] == before[HEADER_SIZE:]
    assert after[:HEADER_SIZE] != before[:HEADER_SIZE]
    keyring.retire("k1", 2)
    decrypt_file(a, tmp_path / "a.out", provider=keyring)
    assert (tmp_path / "a.out").read_bytes() == data
    with pytest.raises(KeyNotFoundError, match="version 1"):
        decrypt_file(b, tmp_path / "b.out", provider=keyring)
    assert not (tmp_path / "b.out").exists()


def test_segment_size_bounds(keyring: LocalKeyring) -> None:
    with pytest.raises(InputError, match="segment size"):
        encrypt_stream(
            io.BytesIO(b""),
            io.BytesIO(),
            provider=keyring,
            key_id="k1",
            object_id="o",
            purpose="p",
            segment_size=10,
        )
