"""Secrets: provider formats are found, placeholders and ordinary code are not."""

from __future__ import annotations

import pytest

from bastion.detectors.interface import ScanContext
from bastion.detectors.secrets import SecretsDetector, shannon_entropy

# Built from parts so that this file itself does not look like it holds live secrets.
SAMPLES = {
    "aws_access_key_id": "AKIA" + "IOSFODNN7EXAMPLE",
    "gcp_api_key": "AIza" + "SyA1234567890abcdefghijklmnopqrstuv",
    "openai_api_key": "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "anthropic_api_key": "sk-ant-api03-" + "x1Y2z3" * 16,
    "huggingface_token": "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "github_token": "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345",
    "gitlab_token": "glpat-" + "abcdefghij0123456789",
    "slack_token": "xoxb-" + "123456789012-abcdefghijkl",
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "private_key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow...",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "connection_string": "postgres://admin:" + "s3cr3tP4ss@db.internal:5432/app",
    "azure_storage_key": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "A1b2C3d4" * 11 + "==",
    "generic_secret": 'api_key = "' + "9f8e7d6c5b4a39281706f5e4d3c2b1a0" + '"',
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_is_found(kind: str) -> None:
    text = f"config: {SAMPLES[kind]} end"
    findings = SecretsDetector().scan(text, ScanContext())
    assert [f.type for f in findings] == [f"secret.{kind}"], findings
    f = findings[0]
    assert text[f.spans[0].start : f.spans[0].end] in SAMPLES[kind]
    assert text[f.spans[0].start : f.spans[0].end] not in f.message


@pytest.mark.parametrize(
    "text",
    [
        "url = 'postgres://user:password@localhost/db'",
        "dsn = 'mysql://root:${DB_PASSWORD}@db/app'",
        "token = get_token()",
        'password = "correct horse"',
        "def sk_live_mode(): return True",
        "sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
        "header = 'eyJhbGciOi.not-a-jwt.at-all'",
    ],
)
def test_placeholders_and_code_are_quiet(text: str) -> None:
    assert SecretsDetector().scan(text, ScanContext()) == []


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
