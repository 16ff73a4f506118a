"""Fixtures for the crypto tests: a fast local keyring and a throwaway SoftHSM2 token."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring

SOFTHSM_LIBS = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


@pytest.fixture
def keyring(tmp_path: Path) -> Iterator[LocalKeyring]:
    """A local keyring (cheap scrypt for tests) holding key ``k1``."""
    ring = LocalKeyring(tmp_path / "keys" / "keyring.json", "correct horse", scrypt_n=MIN_SCRYPT_N)
    ring.create_key("k1")
    yield ring
    ring.close()


def softhsm_library() -> str | None:
    """The SoftHSM2 module path, if installed."""
    return next((p for p in SOFTHSM_LIBS if Path(p).is_file()), None)


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A fresh SoftHSM2 token for this test session: (library, label, user pin).

    SoftHSM2 reads ``SOFTHSM2_CONF`` once per process, so the token is shared by the session's
    tests (each uses its own key ids). Skips when SoftHSM2 is absent.
    """
    lib = softhsm_library()
    if lib is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install -y softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"bastion-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "0000", "--pin", "1234"],
        check=True,
        capture_output=True,
    )
    yield lib, label, "1234"
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
