"""Encryption throughput against openssl and age, and key wrap/unwrap latency per provider.

    .venv/bin/python bench/crypto_bench.py [--size-mb 1024] [--reps 3]

Every tool reads the same file from /tmp (page cache warm) and writes to /dev/null, each run in its
own process (max RSS from wait4). ``openssl enc -aes-256-ctr`` is unauthenticated: an upper bound.
Needs ``openssl`` and ``age`` on PATH; SoftHSM2 for the PKCS#11 latency (skipped when absent).
Temporary files are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1 << 20


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process.

    The peak is VmHWM of the child's own address space, sampled every 5 ms (wait4's ru_maxrss
    would include the forking parent's RSS, which Linux carries across exec).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm_kib(proc.pid))
        time.sleep(0.005)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed with status {proc.returncode}")
    return dt, peak


def worker(mode: str, src: str, dst: str, ring: str) -> None:
    from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring
    from bastion.crypto.stream import decrypt_stream, encrypt_stream

    provider = LocalKeyring(ring, "bench", scrypt_n=MIN_SCRYPT_N)
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        if mode == "encrypt":
            encrypt_stream(
                fin, fout, provider=provider, key_id="bench", object_id="bench.bin", purpose="bench"
            )
        else:
            decrypt_stream(fin, fout, provider=provider)


def latency(provider: object, n: int = 500, batches: int = 5) -> float:
    """Median microseconds of one wrap + unwrap."""
    dek = os.urandom(32)
    out = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(n):
            provider.unwrap(provider.wrap("bench", dek, b"ctx"), b"ctx")  # type: ignore[attr-defined]
        out.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(out)


def softhsm_provider(tmp: Path) -> object | None:
    lib = next((p for p in ("/usr/lib/softhsm/libsofthsm2.so",) if Path(p).is_file()), None)
    if lib is None or shutil.which("softhsm2-util") is None:
        return None
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", "0000", "--pin", "1234"],
                   check=True, capture_output=True)  # fmt: skip
    from bastion.crypto.keys.pkcs11 import Pkcs11Provider

    p = Pkcs11Provider(lib, "bench", "1234")
    p.create_key("bench")
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--worker", nargs=4, metavar=("MODE", "SRC", "DST", "RING"))
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bastion-bench-", dir="/tmp"))
    try:
        plain = tmp / "plain.bin"
        with open(plain, "wb") as f:
            block = os.urandom(64 * CHUNK)
            for _ in range(a.size_mb // 64):
                f.write(block)
        size = plain.stat().st_size
        ring = tmp / "ring" / "ring.json"
        from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring

        local = LocalKeyring(ring, "bench", scrypt_n=MIN_SCRYPT_N)
        local.create_key("bench")
        key_hex, iv_hex = os.urandom(32).hex(), os.urandom(16).hex()
        subprocess.run(["age-keygen", "-o", str(tmp / "age.key")], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(tmp / "age.key")], check=True, capture_output=True,
                                   text=True).stdout.strip()  # fmt: skip
        py = [sys.executable, __file__, "--worker"]
        # ciphertexts to decrypt
        subprocess.run([*py, "encrypt", str(plain), str(tmp / "p.bst"), str(ring)], check=True)
        subprocess.run(["openssl", "enc", "-aes-256-ctr", "-K", key_hex, "-iv", iv_hex, "-in", str(plain),
                        "-out", str(tmp / "p.ossl")], check=True)  # fmt: skip
        subprocess.run(["age", "-r", recipient, "-o", str(tmp / "p.age"), str(plain)], check=True)
        cases = {
            "bastion encrypt (AES-256-GCM STREAM, 1 MiB segments)": [*py, "encrypt", str(plain), "/dev/null", str(ring)],
            "openssl enc -aes-256-ctr": ["openssl", "enc", "-aes-256-ctr", "-K", key_hex, "-iv", iv_hex,
                                          "-in", str(plain), "-out", "/dev/null"],
            "age -r (X25519, ChaCha20-Poly1305 STREAM)": ["age", "-r", recipient, "-o", "/dev/null", str(plain)],
            "bastion decrypt": [*py, "decrypt", str(tmp / "p.bst"), "/dev/null", str(ring)],
            "openssl enc -d -aes-256-ctr": ["openssl", "enc", "-d", "-aes-256-ctr", "-K", key_hex, "-iv", iv_hex,
                                             "-in", str(tmp / "p.ossl"), "-out", "/dev/null"],
            "age -d": ["age", "-d", "-i", str(tmp / "age.key"), "-o", "/dev/null", str(tmp / "p.age")],
        }  # fmt: skip
        results: dict[str, tuple[float, int]] = {}
        for name, cmd in cases.items():
            times, rss = [], 0
            for _ in range(a.reps):
                dt, r = run(cmd)
                times.append(dt)
                rss = max(rss, r)
            results[name] = (statistics.median(times), rss)
        gbs = {k: size / v[0] / 1e9 for k, v in results.items()}
        print(f"file: {size / 1e9:.2f} GB, {a.reps} runs each, median; python {sys.version.split()[0]}")
        print(f"{'case':56} {'GB/s':>6} {'max RSS MiB':>12}")
        for k, (_t, rss) in results.items():
            print(f"{k:56} {gbs[k]:6.2f} {rss / 1024:12.1f}")
        names = list(gbs)
        enc, dec = names[0], names[3]
        print(
            f"encrypt: {gbs[enc] / gbs[list(gbs)[1]]:.2f}x openssl, {gbs[enc] / gbs[list(gbs)[2]]:.2f}x age"
        )
        print(
            f"decrypt: {gbs[dec] / gbs[list(gbs)[4]]:.2f}x openssl, {gbs[dec] / gbs[list(gbs)[5]]:.2f}x age"
        )
        print(f"wrap+unwrap latency, local keyring: {latency(local):.1f} us")
        hsm = softhsm_provider(tmp)
        if hsm is None:
            print("wrap+unwrap latency, SoftHSM2: skipped (softhsm2 not installed)")
        else:
            print(f"wrap+unwrap latency, SoftHSM2 (PKCS#11 AES-GCM): {latency(hsm):.1f} us")
            hsm.close()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
