"""Build hook: compile the pickle scanner's opcode machine with mypyc, when this machine can.

``src/bastion/scanners/model/pickle_machine.py`` stays the one source. A copy of it, with the
SHA-256 of the source appended as ``SOURCE_SHA256``, is compiled as ``pickle_machine_native``;
``bastion.scanners.model.pickle_native`` uses it only while that digest matches the source beside
it. Wheels get the extension (and a platform tag); editable installs get it built in place under
``src/``. Anything that goes wrong (no C compiler, no Python headers, an unsupported platform) is
a warning: the install goes on and the pure-Python machine is used, with the same results.
Set ``BASTION_NATIVE=0`` to skip the compilation.

``python hatch_build.py`` builds the extension in place (after editing ``pickle_machine.py``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path("src/bastion/scanners/model")
SOURCE = PACKAGE_DIR / "pickle_machine.py"
NATIVE = "pickle_machine_native"
# Extension files mypyc writes: the module itself and its runtime library (``NATIVE__mypyc``).
_EXTENSION_SUFFIXES = (".so", ".pyd")


def native_source(source: bytes) -> bytes:
    """The module mypyc compiles: the source and the digest the runtime checks it against."""
    return source + f'\nSOURCE_SHA256 = "{hashlib.sha256(source).hexdigest()}"\n'.encode()


def compile_native(root: Path, out_dir: Path) -> list[Path]:
    """Compile ``pickle_machine_native`` with mypyc; its extension files, copied into ``out_dir``.

    The package tree is copied to a temporary directory, so the source tree is never touched and a
    failed build leaves nothing behind. Raises on any failure.
    """
    with tempfile.TemporaryDirectory(prefix="bastion-mypyc-") as tmp:
        tree = Path(tmp) / "src"
        shutil.copytree(
            root / "src" / "bastion",
            tree / "bastion",
            ignore=shutil.ignore_patterns("__pycache__", *(f"*{s}" for s in _EXTENSION_SUFFIXES)),
        )
        model = tree / "bastion" / "scanners" / "model"
        (model / f"{NATIVE}.py").write_bytes(native_source((root / SOURCE).read_bytes()))
        proc = subprocess.run(
            # The build environment holds only the build requirements: third-party modules that the
            # type checker reaches through bastion's imports (re2, numpy, …) are absent there and are
            # taken as Any. The compiled machine uses none of them; `mypy src` checks them in CI.
            [
                sys.executable,
                "-m",
                "mypyc",
                "--ignore-missing-imports",
                f"bastion/scanners/model/{NATIVE}.py",
            ],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        built = sorted(
            p for p in model.iterdir() if p.name.startswith(NATIVE) and p.suffix in _EXTENSION_SUFFIXES
        )
        if proc.returncode != 0 or not built:
            raise RuntimeError(f"mypyc failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.iterdir():  # a previous build for another source or interpreter
            if old.name.startswith(NATIVE) and old.suffix in _EXTENSION_SUFFIXES:
                old.unlink()
        return [Path(shutil.copy2(p, out_dir / p.name)) for p in built]


def _wanted() -> bool:
    return os.environ.get("BASTION_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


if __name__ == "__main__":
    root = Path(__file__).resolve().parent
    for path in compile_native(root, root / PACKAGE_DIR):
        print(path.relative_to(root))
else:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface

    class NativePickleMachineHook(BuildHookInterface):  # type: ignore[type-arg]
        """Compiles the pickle machine for wheels and editable installs; never fails the build."""

        PLUGIN_NAME = "custom"

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            if self.target_name != "wheel" or not _wanted():
                return
            root = Path(self.root)
            editable = version == "editable"
            # Editable installs import from src/: build in place. Wheels: a staging directory.
            self._staging = None if editable else Path(tempfile.mkdtemp(prefix="bastion-native-"))
            try:
                built = compile_native(root, self._staging or root / PACKAGE_DIR)
            except Exception as e:  # noqa: BLE001 - any failure: pure-Python fallback, never a failed install
                self.app.display_warning(
                    f"bastion: the compiled pickle machine was not built; the pure-Python one is used ({e})"
                )
                return
            self.app.display_info(f"bastion: compiled pickle machine: {', '.join(p.name for p in built)}")
            if not editable:
                build_data["pure_python"] = False
                build_data["infer_tag"] = True
                for p in built:
                    build_data["force_include"][str(p)] = f"bastion/scanners/model/{p.name}"

        def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
            staging = getattr(self, "_staging", None)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
