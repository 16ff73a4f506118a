"""Secrets detector: provider API keys, private keys, JWTs, connection strings, high-entropy tokens.

Registry name: ``secrets`` (both directions). Finding types ``secret.<kind>``; the span points at
the secret, the finding never contains it (metadata holds only the provider/kind). Provider
patterns follow the public token formats (prefixes and lengths); generic tokens must be assigned
to a key-like name and pass an entropy test. Every pattern is RE2 (linear time).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import re2

from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.findings import Finding, Severity, Span

NAME = "secrets"
MIN_ENTROPY = 3.5  # bits per character for generic tokens


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """One kind of secret: stable name, provider, pattern, value group, score, optional validator."""

    kind: str
    provider: str
    pattern: str
    group: int = 0
    score: float = 0.95
    validate: Callable[[str], bool] | None = None


def shannon_entropy(s: str) -> float:
    """Bits of entropy per character of ``s`` (0 for an empty string)."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _valid_jwt(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


_PLACEHOLDERS = frozenset(
    {"pass", "password", "passwd", "pwd", "secret", "xxx", "xxxx", "changeme", "example", "user", "test"}
)


def _real_password(pw: str) -> bool:
    low = pw.lower()
    if low in _PLACEHOLDERS or set(pw) <= {"*", "x", "X", "."}:
        return False
    return not (pw[0] in "$%{<[" or pw.endswith(("}", ">", "]")))


def _high_entropy(value: str) -> bool:
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and shannon_entropy(value) >= MIN_ENTROPY and not value.isdigit()


_KEY_NAME = (
    r"(?i:api[_-]?key|apikey|secret[_-]?key|client[_-]?secret|app[_-]?secret|access[_-]?token|auth[_-]?token|"
    r"bearer|secret|token|passwd|password|private[_-]?key|access[_-]?key)"
)

PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern("aws_access_key_id", "aws", r"\b((?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16})\b", 1),
    SecretPattern(
        "aws_secret_access_key",
        "aws",
        r"(?i:aws)[\w.-]{0,20}(?i:secret|key)[\w.-]{0,20}['\"]?\s*[:=]\s*['\"]?([A-Za-z0-9/+]{40})\b",
        1,
    ),
    SecretPattern("gcp_api_key", "gcp", r"\b(AIza[0-9A-Za-z_-]{35})\b", 1),
    SecretPattern("gcp_oauth_token", "gcp", r"\b(ya29\.[0-9A-Za-z_-]{30,})\b", 1),
    SecretPattern(
        "azure_storage_key",
        "azure",
        r"AccountKey=([A-Za-z0-9+/]{60,}={0,2})",
        1,
    ),
    SecretPattern("azure_sas_token", "azure", r"[?&]sig=([A-Za-z0-9%+/]{40,}={0,2})", 1, 0.9),
    SecretPattern(
        "openai_api_key",
        "openai",
        r"\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}|"
        r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})",
        1,
    ),
    SecretPattern("anthropic_api_key", "anthropic", r"\b(sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,})", 1),
    SecretPattern("huggingface_token", "huggingface", r"\b(hf_[A-Za-z]{34,40})\b", 1),
    SecretPattern("github_token", "github", r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})\b", 1),
    SecretPattern("github_fine_grained_token", "github", r"\b(github_pat_[A-Za-z0-9_]{60,255})\b", 1),
    SecretPattern("gitlab_token", "gitlab", r"\b(gl(?:pat|dt|rt|ptt|cbt|soat)-[A-Za-z0-9_-]{20,})\b", 1),
    SecretPattern("slack_token", "slack", r"\b(xox[abposr]-[A-Za-z0-9-]{10,250})\b", 1),
    SecretPattern(
        "slack_webhook",
        "slack",
        r"(https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{30,})",
        1,
    ),
    SecretPattern("stripe_key", "stripe", r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247})\b", 1),
    SecretPattern("sendgrid_key", "sendgrid", r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})\b", 1),
    SecretPattern("npm_token", "npm", r"\b(npm_[A-Za-z0-9]{36})\b", 1),
    SecretPattern("pypi_token", "pypi", r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})", 1),
    SecretPattern("twilio_key", "twilio", r"\b(SK[0-9a-f]{32})\b", 1, 0.8),
    SecretPattern(
        "private_key",
        "pem",
        r"(-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY(?: BLOCK)?-----)",
        1,
        0.99,
    ),
    SecretPattern(
        "jwt",
        "jwt",
        r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
        1,
        0.9,
        _valid_jwt,
    ),
    SecretPattern(
        "connection_string",
        "uri",
        r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver|ftp|sftp|"
        r"smtp|ldaps?|https?)://[^\s:/@'\"]{1,64}:([^\s@/'\"]{3,128})@[^\s/'\"]{1,255}",
        1,
        0.85,
        _real_password,
    ),
    SecretPattern(
        "generic_secret",
        "generic",
        rf"\b{_KEY_NAME}[\w-]{{0,20}}['\"]?\s*(?::|=|:=|=>)\s*['\"]([A-Za-z0-9/+_=.~-]{{16,128}})['\"]",
        1,
        0.7,
        _high_entropy,
    ),
)


@cache
def _compiled() -> tuple[tuple[SecretPattern, re2._Regexp], ...]:
    options = re2.Options()
    options.max_mem = 64 << 20
    options.log_errors = False
    return tuple((p, re2.compile(p.pattern, options)) for p in PATTERNS)


class SecretsDetector:
    """Registered as ``secrets``."""

    name = NAME
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})
    #: The shortest match of every pattern fits in this many characters (the longest, Anthropic's
    #: keys, needs 93); a stream's look-behind is at least this long, and longer tokens keep growing
    #: from a match already seen.
    min_stream_window = 128

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        findings: list[Finding] = []
        taken: list[tuple[int, int]] = []  # disjoint (start, end), sorted: so ends are sorted too
        for pat, rx in _compiled():
            for m in rx.finditer(text):
                value = m.group(pat.group)
                if value is None or (pat.validate is not None and not pat.validate(value)):
                    continue
                span = Span(m.start(pat.group), m.end(pat.group))
                i = bisect.bisect_left(taken, (span.end,))  # spans starting before this one ends
                if i and taken[i - 1][1] > span.start:
                    continue  # a more specific pattern already claimed it
                taken.insert(i, (span.start, span.end))
                findings.append(
                    Finding(
                        detector=NAME,
                        type=f"secret.{pat.kind}",
                        score=pat.score,
                        severity=Severity.HIGH if pat.score >= 0.85 else Severity.MEDIUM,
                        message=f"{pat.provider} secret: {pat.kind.replace('_', ' ')}",
                        spans=(span,),
                        hint="Remove the secret and rotate it; it may already be exposed.",
                        metadata={"provider": pat.provider},
                    )
                )
        findings.sort(key=lambda f: f.spans[0].start)
        return findings


def patterns() -> tuple[str, ...]:
    """Every pattern (for the linear-time test)."""
    return tuple(p.pattern for p in PATTERNS)
