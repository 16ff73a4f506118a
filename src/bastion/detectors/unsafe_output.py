"""Unsafe model output: data-exfiltration URLs, active HTML, links to hosts outside an allowlist.

Registry name: ``unsafe_output`` (output direction). Finding types:

- ``output.exfiltration_image``: a markdown/HTML image whose URL carries data (long query values or
  path segments) — rendered by a chat UI, it leaks data to that host without a click.
- ``output.exfiltration_link``: a link whose URL carries data.
- ``output.html``: active HTML (script, iframe, event handlers, ``javascript:`` URLs, forms, refresh).
- ``output.external_link`` / ``output.external_image``: a URL whose host is not in
  ``ScanContext.allowed_hosts`` (only checked when an allowlist is configured; a host matches an
  entry equal to it or a parent domain of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from urllib.parse import parse_qsl, unquote, urlsplit

import re2

from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.findings import Finding, Severity, Span
from bastion.errors import ConfigError

NAME = "unsafe_output"
DATA_VALUE_CHARS = 24  # a query value or path segment this long probably carries data
MAX_FINDINGS = 50

MD_IMAGE = r"!\[[^\]\n]{0,500}\]\(\s*<?((?:https?:)?//[^\s)>]+)"
MD_LINK = r"(?:^|[^!])\[[^\]\n]{0,500}\]\(\s*<?((?:https?:)?//[^\s)>]+)"
HTML_IMG = r"(?i)<img\b[^>]{0,1000}?\bsrc\s*=\s*['\"]?((?:https?:)?//[^\s'\">]+)"
BARE_URL = r"(?i)\bhttps?://[^\s<>'\")\]]+"
ACTIVE_HTML = (
    r"(?i)<\s*(?:script|iframe|object|embed|form|svg|base|link)\b|\bon(?:error|load|click|mouseover|focus|"
    r"submit|animationstart|toggle)\s*=|\bjavascript\s*:|<\s*meta\b[^>]{0,200}http-equiv\s*=\s*['\"]?refresh"
)


@cache
def _rx() -> dict[str, re2._Regexp]:
    return {
        "image": re2.compile(MD_IMAGE),
        "link": re2.compile(MD_LINK),
        "html_img": re2.compile(HTML_IMG),
        "url": re2.compile(BARE_URL),
        "html": re2.compile(ACTIVE_HTML),
    }


def carries_data(url: str) -> bool:
    """True when a URL's query values or path segments look like smuggled data."""
    try:
        parts = urlsplit(url if "://" in url else "https:" + url)
    except ValueError:
        return True  # unparsable URL in model output: treat as suspicious
    values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    if sum(len(v) for v in values) >= DATA_VALUE_CHARS * 2 or any(len(v) >= DATA_VALUE_CHARS for v in values):
        return True
    segments = [unquote(s) for s in parts.path.split("/") if s]
    return any(
        len(s) >= DATA_VALUE_CHARS * 2 and not s.endswith((".png", ".jpg", ".gif", ".svg")) for s in segments
    )


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """True when ``url``'s host is one of ``allowed`` or a subdomain of one."""
    try:
        host = (urlsplit(url if "://" in url else "https:" + url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    for entry in allowed:
        e = entry.lower().strip().lstrip("*.").rstrip(".")
        if e and (host == e or host.endswith("." + e)):
            return True
    return False


def _finding(ftype: str, score: float, message: str, span: Span) -> Finding:
    return Finding(
        detector=NAME,
        type=f"output.{ftype}",
        score=score,
        severity=Severity.from_score(score),
        message=message,
        spans=(span,),
    )


class UnsafeOutputDetector:
    """Registered as ``unsafe_output``."""

    name = NAME
    directions = frozenset({Direction.OUTPUT})
    #: An image is seen as one only with its opening (``![`` + up to 500 characters of alt text, or
    #: ``<img`` + up to 1,000 of attributes) and its URL's host in view; what precedes the URL
    #: carries nothing, so no more is held back than usual.
    min_stream_window = 1_600
    min_stream_holdback = 0

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        if isinstance(allowed_hosts, str):
            raise ConfigError("unsafe_output.allowed_hosts must be a list of host names")
        self.allowed_hosts = tuple(allowed_hosts)

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        rx = _rx()
        allowed = (*self.allowed_hosts, *context.allowed_hosts)
        out: list[Finding] = []
        seen: set[tuple[int, int]] = set()
        for key, kind in (("image", "image"), ("html_img", "image"), ("link", "link"), ("url", "link")):
            for m in rx[key].finditer(text):
                group = 0 if key == "url" else 1
                url = m.group(group)
                span = Span(m.start(group), m.end(group))
                if (span.start, span.end) in seen or any(s <= span.start < e for s, e in seen):
                    continue
                seen.add((span.start, span.end))
                if allowed and host_allowed(url, allowed):
                    continue
                if carries_data(url):
                    score = 0.95 if kind == "image" else 0.8
                    out.append(
                        _finding(f"exfiltration_{kind}", score, f"a {kind} URL that carries data", span)
                    )
                elif kind == "image" and not allowed:
                    out.append(_finding("external_image", 0.5, "an image loaded from an external host", span))
                elif allowed:
                    out.append(
                        _finding(f"external_{kind}", 0.6, f"a {kind} to a host outside the allowlist", span)
                    )
                if len(out) >= MAX_FINDINGS:
                    return out
        for m in rx["html"].finditer(text):
            out.append(_finding("html", 0.8, "active HTML or script in the output", Span(m.start(), m.end())))
            if len(out) >= MAX_FINDINGS:
                break
        return out


def patterns() -> tuple[str, ...]:
    """Every pattern (for the linear-time test)."""
    return (MD_IMAGE, MD_LINK, HTML_IMG, BARE_URL, ACTIVE_HTML)
