"""Personal data detector: e-mail, phone, payment card, IBAN, national IDs, IP, street address, name.

Registry name: ``pii`` (both directions). Finding types ``pii.<entity>`` with an exact span; the
matched value never appears in the finding (``metadata`` carries only the entity's scheme, e.g.
``us.ssn``). Structured types are validated (Luhn, mod-97, ``python-stdnum`` check digits,
``phonenumbers``), which keeps precision high; names and street addresses are pattern-based and
weaker (documented in docs/detectors.md). Every pattern is RE2 (linear time).

Redaction (mask / pseudonymise) of what this detector finds is in
:mod:`bastion.detectors.pii_redaction`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import phonenumbers
import re2
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.br import cpf
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.us import ssn

from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.findings import Finding, Severity, Span
from bastion.errors import ConfigError

NAME = "pii"
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "PL")
STRUCTURED = ("email", "phone", "payment_card", "iban", "national_id", "ip_address")


def _ctx(words: str) -> str:
    """A keyword that must precede a bare-digit ID (bare digits alone are too ambiguous)."""
    return rf"(?i:{words})[^0-9\n]{{0,30}}"


@dataclass(frozen=True, slots=True)
class _Pattern:
    entity: str
    scheme: str
    pattern: str
    group: int  # capture group holding the value (0 = whole match)
    validate: Callable[[str], bool]


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def _alnum_upper(s: str) -> str:
    return "".join(c for c in s if c.isalnum()).upper()


_CARD_PREFIXES = (
    "4",
    "34",
    "37",
    "36",
    "38",
    "30",
    "35",
    "2131",
    "1800",
    "6011",
    "65",
    "62",
    "64",
    *tuple(str(p) for p in range(51, 56)),
)


_MAESTRO_PREFIXES = ("50", *(str(p) for p in range(56, 70)))  # Maestro also issues 12-digit numbers


def _valid_card(s: str) -> bool:
    d = _digits(s)
    if len(d) == 12:
        if not d.startswith(_MAESTRO_PREFIXES):
            return False
    elif not 13 <= len(d) <= 19 or not d.startswith(
        _CARD_PREFIXES + tuple(str(p) for p in range(2221, 2721))
    ):
        return False
    return bool(luhn.is_valid(d)) and len(set(d)) > 1


def _valid_ip(s: str) -> bool:
    try:
        addr = ipaddress.ip_address(s)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return not s.startswith("0.") and s.count(".") == 3
    return s.count(":") >= 2 and len(s) >= 6 and any(c.isdigit() for c in s) and not addr.is_unspecified


_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _valid_nino(s: str) -> bool:
    c = _alnum_upper(s)
    return len(c) == 9 and c[:2] not in _NINO_BAD_PREFIX and c[0] not in "DFIQUV" and c[1] not in "DFIOQUV"


def _ok(fn: Callable[[str], object]) -> Callable[[str], bool]:
    def check(s: str) -> bool:
        try:
            return bool(fn(s))
        except Exception:  # noqa: BLE001 - stdnum validators raise on odd input: "not this scheme"
            return False

    return check


PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "email",
        "email",
        r"[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b",
        0,
        lambda s: True,
    ),
    _Pattern("payment_card", "card", r"\b(?:\d[ -]?){11,18}\d\b", 0, _valid_card),
    _Pattern(
        "iban",
        "iban",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
        0,
        _ok(lambda s: std_iban.is_valid(_alnum_upper(s))),
    ),
    _Pattern("national_id", "us.ssn", r"\b(\d{3}-\d{2}-\d{4})\b", 1, _ok(ssn.is_valid)),
    _Pattern("national_id", "us.ssn", _ctx("ssn|social security") + r"\b(\d{9})\b", 1, _ok(ssn.is_valid)),
    _Pattern(
        "national_id",
        "gb.nino",
        r"\b([A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D])\b",
        1,
        _valid_nino,
    ),
    _Pattern(
        "national_id",
        "fr.nir",
        r"\b([12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2})\b",
        1,
        _ok(lambda s: nir.is_valid(_alnum_upper(s))),
    ),
    _Pattern(
        "national_id",
        "it.codicefiscale",
        r"\b([A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z])\b",
        1,
        _ok(codicefiscale.is_valid),
    ),
    _Pattern("national_id", "es.dni", r"\b(\d{8}-?[A-Z])\b", 1, _ok(dni.is_valid)),
    _Pattern("national_id", "es.nie", r"\b([XYZ]-?\d{7}-?[A-Z])\b", 1, _ok(nie.is_valid)),
    _Pattern("national_id", "br.cpf", r"\b(\d{3}\.\d{3}\.\d{3}-\d{2})\b", 1, _ok(cpf.is_valid)),
    _Pattern("national_id", "br.cpf", _ctx("cpf") + r"\b(\d{11})\b", 1, _ok(cpf.is_valid)),
    _Pattern("national_id", "pl.pesel", _ctx("pesel") + r"\b(\d{11})\b", 1, _ok(pesel.is_valid)),
    _Pattern(
        "national_id",
        "nl.bsn",
        _ctx("bsn|burgerservicenummer|sofinummer") + r"\b(\d{9})\b",
        1,
        _ok(bsn.is_valid),
    ),
    _Pattern("national_id", "in.aadhaar", r"\b([2-9]\d{3} \d{4} \d{4})\b", 1, _ok(aadhaar.is_valid)),
    _Pattern("ip_address", "ipv4", r"\b((?:\d{1,3}\.){3}\d{1,3})\b", 1, _valid_ip),
    _Pattern(
        "ip_address", "ipv6", r"(?i)(?:^|[^0-9a-f:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})\b", 1, _valid_ip
    ),
    _Pattern(
        "street_address",
        "street.en",
        r"\b\d{1,5}[A-Za-z]?,? (?:\p{Lu}[\pL'.-]+ ){1,4}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|"
        r"Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|Pl\.?|Square|Sq\.?|Trace|Terrace|Parkway|Pkwy\.?|Circle|"
        r"Highway|Hwy\.?|Crescent|Close|Row|Mews|Gardens|Grove|Hill|Park|Ridge|Valley|Views?|Forges?|Crossing|"
        r"Plaza|Loop|Trail|Path|Pike|Alley|Walk|Heights|Knolls?|Meadows?|Springs?|Summit|Stravenue|Estates?)\b",
        0,
        lambda s: True,
    ),
    _Pattern(
        "street_address",
        "street.de_nl",
        r"\b\p{Lu}[\pL-]*(?i:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|steig|chaussee|"
        r"laan|straat|gracht|kade|singel|plein|dreef|hof) \d{1,4} ?[a-zA-Z]?\b",
        0,
        lambda s: True,
    ),
    _Pattern(
        "street_address",
        "street.fr",
        r"\b\d{1,4},? (?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours|square|"
        r"passage) (?:[\pL'-]+ ?){1,5}",
        0,
        lambda s: True,
    ),
    _Pattern(
        "street_address",
        "street.south",
        r"\b(?:Calle|Avenida|Av\.|Plaza|Paseo|Camino|Carrer|Ronda|Via|Viale|Piazza|Piazzale|Corso|Largo|"
        r"Vicolo|Rua|Travessa|Alameda|Praça|ulica|ul\.|aleja|al\.) (?:[\pL'.-]+ ){0,4}[\pL'.-]+,? \d{1,4}\b",
        0,
        lambda s: True,
    ),
    _Pattern(
        "person_name",
        "context",
        r"(?:\b(?i:my name is|i am called|this is|name:|signed,?|regards,|sincerely,|dear|contact)|"
        r"\b(?:Mr|Mrs|Ms|Mx|Dr|Prof|Herr|Frau|Monsieur|Madame|Mme|Señor|Señora|Sr|Sra|Sig|Sig\.ra|Dott)\.?)"
        r"\s+(\p{Lu}\p{Ll}+(?:[ -](?:van |von |de |da |di |del |la |le )?\p{Lu}\p{Ll}+){1,2})\b",
        1,
        lambda s: True,
    ),
)
_PRIORITY = {"payment_card": 0, "iban": 1, "national_id": 2, "email": 3, "ip_address": 4, "phone": 5}


@cache
def _compiled() -> tuple[tuple[_Pattern, re2._Regexp], ...]:
    options = re2.Options()
    options.max_mem = 64 << 20
    options.log_errors = False
    return tuple((p, re2.compile(p.pattern, options)) for p in PATTERNS)


@dataclass(frozen=True, slots=True)
class Entity:
    """One piece of personal data found: its type, scheme and span (the value itself is not kept)."""

    entity: str
    scheme: str
    span: Span


def find_entities(text: str, regions: Sequence[str] = DEFAULT_REGIONS) -> list[Entity]:
    """Every PII entity in ``text``, non-overlapping (validated structured types win), in order."""
    found: list[Entity] = []
    for pat, rx in _compiled():
        for m in rx.finditer(text):
            value = m.group(pat.group)
            if value is not None and pat.validate(value):
                found.append(Entity(pat.entity, pat.scheme, Span(m.start(pat.group), m.end(pat.group))))
    found.extend(_phones(text, regions))
    return _resolve(found)


PHONE_CANDIDATE = r"(?:\+|\(|\b)\d[\d ().\-]{5,18}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b"
# Dates, times and version numbers that phonenumbers would accept as national numbers.
_NOT_A_PHONE = (
    r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,3}(?:\.\d{1,2}){2,})\b"
)
# A bare run of digits (no +, brackets or separators) is an order or account number unless a
# phone word stands shortly before it ("call me at …", "tel: …").
_PHONE_CUE = r"(?i)(?:phone|tel|mobile|cell|call|fax|whatsapp|sms|téléphone|telefon|teléfono|telefone|电话|電話)\D{0,24}$"


@cache
def _phone_rx() -> re2._Regexp:
    return re2.compile(PHONE_CANDIDATE)


@cache
def _not_a_phone_rx() -> re2._Regexp:
    return re2.compile(_NOT_A_PHONE)


@cache
def _phone_cue_rx() -> re2._Regexp:
    return re2.compile(_PHONE_CUE)


def _plausible_phone(text: str, start: int, cand: str) -> bool:
    if _not_a_phone_rx().search(cand):
        return False
    if cand.isdigit():
        return _phone_cue_rx().search(text[max(0, start - 40) : start]) is not None
    return True


def _phones(text: str, regions: Sequence[str]) -> list[Entity]:
    """Phone-like runs (RE2) confirmed by ``phonenumbers`` for any of ``regions``."""
    out: list[Entity] = []
    for m in _phone_rx().finditer(text):
        cand = m.group(0)
        if sum(c.isdigit() for c in cand) < 7 or not _plausible_phone(text, m.start(), cand):
            continue
        for region in ("ZZ",) if cand.startswith("+") else regions:
            try:
                num = phonenumbers.parse(cand, None if region == "ZZ" else region)
            except phonenumbers.NumberParseException:
                break
            # Valid per the numbering plan; or, for "+" numbers and numbers right after a phone
            # word, possible (right length): generated and newly allocated ranges are often not
            # in the metadata, and the context already says "phone".
            if phonenumbers.is_valid_number(num) or (
                phonenumbers.is_possible_number(num)
                and (cand.startswith("+") or _phone_cue_rx().search(text[max(0, m.start() - 40) : m.start()]))
            ):
                out.append(Entity("phone", "phone", Span(m.start(), m.end())))
                break
    return out


def _resolve(found: list[Entity]) -> list[Entity]:
    """Drop duplicates and overlaps: better validated, then longer, entities win."""
    ranked = sorted(
        found, key=lambda e: (_PRIORITY.get(e.entity, 9), -(e.span.end - e.span.start), e.span.start)
    )
    kept: list[Entity] = []
    for e in ranked:
        if all(e.span.end <= k.span.start or e.span.start >= k.span.end for k in kept):
            kept.append(e)
    return sorted(kept, key=lambda e: (e.span.start, e.span.end))


_SCORES = {"street_address": 0.6, "person_name": 0.5}


class PiiDetector:
    """Registered as ``pii``.

    ``regions``: ISO regions whose national phone formats are recognised (international ``+`` numbers
    always are); ``entities``: report only these entity types (default: all).
    """

    name = NAME
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(
        self, regions: Sequence[str] = DEFAULT_REGIONS, entities: Sequence[str] | None = None
    ) -> None:
        if isinstance(regions, str) or not all(isinstance(r, str) and len(r) == 2 for r in regions):
            raise ConfigError("pii.regions must be a list of two-letter ISO region codes")
        self.regions = tuple(r.upper() for r in regions)
        known = {p.entity for p in PATTERNS} | {"phone"}
        if entities is not None and (isinstance(entities, str) or not set(entities) <= known):
            raise ConfigError(f"pii.entities must be a list drawn from {sorted(known)}")
        self.entities = frozenset(entities) if entities is not None else frozenset(known)

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        findings = []
        for e in find_entities(text, self.regions):
            if e.entity not in self.entities:
                continue
            score = _SCORES.get(e.entity, 0.8)
            findings.append(
                Finding(
                    detector=NAME,
                    type=f"pii.{e.entity}",
                    score=score,
                    severity=Severity.MEDIUM if score >= 0.7 else Severity.LOW,
                    message=f"personal data: {e.entity.replace('_', ' ')}",
                    spans=(e.span,),
                    metadata={"scheme": e.scheme},
                )
            )
        return findings


def patterns() -> tuple[str, ...]:
    """Every pattern (for the linear-time test)."""
    return tuple(p.pattern for p in PATTERNS)
