"""``bastion sign``, ``bastion verify`` (OpenSSF model signing) and ``bastion bom`` (CycloneDX 1.6 ML-BOM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.output import err, out
from bastion.cli.runtime import cli_actor, record_event
from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.errors import InputError

MethodOpt = Annotated[
    str, typer.Option("--method", "-m", help="key, certificate or sigstore (keyless; needs the network).")
]
SignatureOpt = Annotated[
    Path | None,
    typer.Option("--signature", "-s", help="Signature file (default: <dir>/model.sig or <file>.sig)."),
]


def _method(value: str) -> object:
    from bastion.crypto.model_signing import SigningMethod

    try:
        return SigningMethod(value.lower())
    except ValueError:
        raise InputError(
            f"unknown signing method {value!r}", hint="Use key, certificate or sigstore."
        ) from None


def sign(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Model file or directory to sign.")],
    method: MethodOpt = "key",
    private_key: Annotated[Path | None, typer.Option("--private-key", help="PEM private key (EC).")] = None,
    certificate: Annotated[
        Path | None, typer.Option("--certificate", help="Signing certificate (PEM).")
    ] = None,
    chain: Annotated[
        list[Path] | None, typer.Option("--certificate-chain", help="Intermediate certificates.")
    ] = None,
    signature: SignatureOpt = None,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="Environment variable holding the key's password.")
    ] = None,
) -> None:
    """Sign a model in the OpenSSF model-signing format."""
    import os

    from bastion.crypto.model_signing import sign_model

    password = os.environ.get(password_env) if password_env else None
    info = sign_model(
        path,
        method=_method(method),  # type: ignore[arg-type]
        signature_path=signature,
        private_key=private_key,
        password=password,
        certificate=certificate,
        certificate_chain=tuple(chain or ()),
    )
    record_event(
        ctx,
        AuditEvent(
            EventTag.ARTIFACT_SIGNED,
            actor=cli_actor(),
            target=str(path),
            attributes={"method": info.method.value, "signature": str(info.signature_path)},
        ),
    )
    err.print(f"signed {path} -> {info.signature_path}", highlight=False)


def verify(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Model file or directory to verify.")],
    method: MethodOpt = "key",
    public_key: Annotated[Path | None, typer.Option("--public-key", help="PEM public key.")] = None,
    chain: Annotated[
        list[Path] | None,
        typer.Option("--certificate-chain", help="Trusted root and intermediate certificates."),
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="Sigstore: expected signer identity.")
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--oidc-issuer", help="Sigstore: expected OIDC issuer.")
    ] = None,
    signature: SignatureOpt = None,
) -> None:
    """Verify a model against its signature; every changed, added or removed file is named (exit 1)."""
    from bastion.crypto.model_signing import ModelVerificationError, verify_model

    try:
        info = verify_model(
            path,
            method=_method(method),  # type: ignore[arg-type]
            signature_path=signature,
            public_key=public_key,
            certificate_chain=tuple(chain or ()),
            identity=identity,
            oidc_issuer=issuer,
        )
    except ModelVerificationError as e:
        problems: list[JSONValue] = list(e.problems[:50])
        record_event(
            ctx,
            AuditEvent(
                EventTag.ARTIFACT_VERIFIED,
                actor=cli_actor(),
                target=str(path),
                outcome="failure",
                attributes={"problems": problems},
            ),
        )
        err.print(f"[bold red]verification failed[/]: {e.message}", highlight=False)
        raise typer.Exit(1) from None
    record_event(
        ctx,
        AuditEvent(
            EventTag.ARTIFACT_VERIFIED,
            actor=cli_actor(),
            target=str(path),
            attributes={"method": info.method.value},
        ),
    )
    err.print(f"[green]verified[/] {path} against {info.signature_path}", highlight=False)


def bom(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Model directory.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the BOM to FILE.")] = None,
    scan: Annotated[
        bool, typer.Option("--scan/--no-scan", help="Scan the model and record the result.")
    ] = True,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM for a model directory (validated against the official schema)."""
    from bastion.scanners.bom import build_ml_bom

    summary: dict[str, str] = {}
    if scan and path.is_dir():
        from bastion.scanners.model.artifacts import scan_model_paths

        report = scan_model_paths([path])
        worst = report.worst_severity()
        summary = {
            "findings": str(len(report.findings)),
            "worst": worst.value if worst else "none",
            "errors": str(sum(1 for r in report.results if r.error)),
        }
    doc = build_ml_bom(path, scan_summary=summary)
    text = json.dumps(doc, indent=2) + "\n"
    record_event(
        ctx,
        AuditEvent(
            EventTag.BOM_CREATED,
            actor=cli_actor(),
            target=str(path),
            attributes={"components": len(doc["metadata"]["component"].get("components", []))},
        ),
    )
    if output is None:
        out.file.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"BOM written to {output}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``sign``, ``verify`` and ``bom`` to the root app."""
    app.command("sign")(sign)
    app.command("verify")(verify)
    app.command("bom")(bom)
