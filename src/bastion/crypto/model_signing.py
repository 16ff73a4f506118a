"""Model signing and verification in the OpenSSF model-signing format (the ``model-signing`` library).

Three methods: a private key (``key``), a private key with an X.509 certificate chain
(``certificate``, verified offline against trusted roots) and Sigstore keyless (``sigstore``, needs
the network). Verification re-hashes every file, so any changed, added or removed file is detected
and named in the error. :func:`verified_path` is the verify-before-load helper::

    model_dir = verified_path("models/bert", public_key="keys/model-signing.pub")
    model = AutoModel.from_pretrained(model_dir)          # or torch.load / joblib.load on a file in it
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bastion.errors import CryptoError, InputError

DEFAULT_SIGNATURE_NAME = "model.sig"


class SigningMethod(StrEnum):
    KEY = "key"
    CERTIFICATE = "certificate"
    SIGSTORE = "sigstore"


class ModelVerificationError(CryptoError):
    """The model does not match its signature (or the signature does not verify)."""

    code = "model_verification_failed"
    hint = "Do not load this model. Re-download it from its publisher or ask them to re-sign it."

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """What was signed or verified."""

    model_path: Path
    signature_path: Path
    method: SigningMethod


def default_signature_path(model_path: Path) -> Path:
    """``<dir>/model.sig`` for a directory, ``<file>.sig`` for a single file."""
    return (
        model_path / DEFAULT_SIGNATURE_NAME
        if model_path.is_dir()
        else model_path.with_name(model_path.name + ".sig")
    )


def _hashing(model_path: Path, signature_path: Path, ignore: Sequence[str]) -> object:
    from model_signing import hashing

    ignored = list(ignore)
    if model_path.is_dir():
        with contextlib.suppress(ValueError):  # a signature outside the directory needs no ignoring
            ignored.append(str(signature_path.resolve().relative_to(model_path.resolve())))
    return hashing.Config().set_ignored_paths(paths=ignored)  # type: ignore[no-untyped-call]


def _require(value: object, what: str) -> None:
    if value is None:
        raise InputError(f"{what} is required for this signing method")


def sign_model(
    model_path: Path,
    *,
    method: SigningMethod = SigningMethod.KEY,
    signature_path: Path | None = None,
    private_key: Path | None = None,
    password: str | None = None,
    certificate: Path | None = None,
    certificate_chain: Sequence[Path] = (),
    ignore: Sequence[str] = (),
) -> SignatureInfo:
    """Sign the file or directory ``model_path``; the signature covers every file's SHA-256."""
    from model_signing import signing

    if not model_path.exists():
        raise InputError(f"{str(model_path)!r} does not exist")
    sig = signature_path or default_signature_path(model_path)
    config = signing.Config()  # type: ignore[no-untyped-call]
    try:
        if method is SigningMethod.KEY:
            _require(private_key, "--private-key")
            config.use_elliptic_key_signer(private_key=str(private_key), password=password)
        elif method is SigningMethod.CERTIFICATE:
            _require(private_key, "--private-key")
            _require(certificate, "--certificate")
            config.use_certificate_signer(
                private_key=str(private_key),
                signing_certificate=str(certificate),
                certificate_chain=[str(c) for c in certificate_chain],
            )
        else:
            config.use_sigstore_signer()
        config.set_hashing_config(_hashing(model_path, sig, ignore))  # type: ignore[arg-type]
        config.sign(str(model_path), str(sig))
    except (InputError, CryptoError):
        raise
    except Exception as e:  # the library raises ValueError, OSError, sigstore and network errors
        raise CryptoError(f"signing failed: {_describe(e, method)}") from e
    return SignatureInfo(model_path, sig, method)


def verify_model(
    model_path: Path,
    *,
    method: SigningMethod = SigningMethod.KEY,
    signature_path: Path | None = None,
    public_key: Path | None = None,
    certificate_chain: Sequence[Path] = (),
    identity: str | None = None,
    oidc_issuer: str | None = None,
    ignore: Sequence[str] = (),
) -> SignatureInfo:
    """Verify ``model_path`` against its signature; :class:`ModelVerificationError` names every
    changed, added or removed file."""
    from model_signing import verifying

    sig = signature_path or default_signature_path(model_path)
    if not sig.is_file():
        raise ModelVerificationError(f"signature {str(sig)!r} not found: the model is unsigned")
    config = verifying.Config()  # type: ignore[no-untyped-call]
    try:
        if method is SigningMethod.KEY:
            _require(public_key, "--public-key")
            config.use_elliptic_key_verifier(public_key=str(public_key))
        elif method is SigningMethod.CERTIFICATE:
            if not certificate_chain:
                raise InputError("--certificate-chain (trusted root and intermediates) is required")
            config.use_certificate_verifier(certificate_chain=[str(c) for c in certificate_chain])
        else:
            _require(identity, "--identity")
            _require(oidc_issuer, "--oidc-issuer")
            config.use_sigstore_verifier(identity=str(identity), oidc_issuer=str(oidc_issuer))
        config.set_hashing_config(_hashing(model_path, sig, ignore))  # type: ignore[arg-type]
        config.verify(str(model_path), str(sig))
    except (InputError, CryptoError):
        raise
    except ValueError as e:
        problems = _mismatches(str(e))
        if problems:
            raise ModelVerificationError(
                "the model does not match its signature:\n  " + "\n  ".join(problems), problems=problems
            ) from e
        raise ModelVerificationError(f"signature does not verify: {_describe(e, method)}") from e
    except Exception as e:
        raise ModelVerificationError(f"signature does not verify: {_describe(e, method)}") from e
    return SignatureInfo(model_path, sig, method)


def verified_path(
    model_path: str | os.PathLike[str],
    *,
    public_key: str | os.PathLike[str] | None = None,
    certificate_chain: Sequence[str | os.PathLike[str]] = (),
    signature_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Return ``model_path`` only after its signature verifies (key or certificate method).

    Use it in front of any loader: ``torch.load(verified_path(p, public_key=k), weights_only=True)``,
    ``AutoModel.from_pretrained(verified_path(d, public_key=k))``, ``joblib.load(verified_path(...))``.
    For a single file, the signature is ``<file>.sig`` unless ``signature_path`` says otherwise.
    """
    path = Path(model_path)
    sig = Path(signature_path) if signature_path is not None else None
    if public_key is not None:
        verify_model(path, method=SigningMethod.KEY, public_key=Path(public_key), signature_path=sig)
    elif certificate_chain:
        verify_model(
            path,
            method=SigningMethod.CERTIFICATE,
            certificate_chain=[Path(c) for c in certificate_chain],
            signature_path=sig,
        )
    else:
        raise InputError("verified_path needs public_key or certificate_chain")
    return path


def _mismatches(message: str) -> list[str]:
    if not message.startswith("Signature mismatch: "):
        return []
    try:
        items = ast.literal_eval(message.removeprefix("Signature mismatch: "))
    except (ValueError, SyntaxError):
        return [message]
    if not isinstance(items, list):
        return [message]
    out: list[str] = []
    for item in map(str, items):
        if m := re.match(r"Hash mismatch for '(.+?)'", item):
            out.append(f"changed: {m.group(1)}")
        elif m := re.match(r"Extra files found in model '.*?': (.+)", item):
            out.extend(f"added: {n.strip()}" for n in m.group(1).split(","))
        elif m := re.match(r"Missing files in model '.*?': (.+)", item):
            out.extend(f"removed: {n.strip()}" for n in m.group(1).split(","))
        else:
            out.append(item)
    return out


def _describe(e: BaseException, method: SigningMethod) -> str:
    text = str(e) or type(e).__name__
    if method is SigningMethod.SIGSTORE and any(
        w in text.lower()
        for w in ("connect", "network", "resolve", "timed out", "oauth", "browser", "token", "tuf", "refresh")
    ):
        return f"{text} (Sigstore keyless signing needs network access to Fulcio, Rekor and an OIDC provider)"
    return text
