"""PII detection (validated structured types) and redaction (mask, pseudonymise, reversible only with the key)."""

from __future__ import annotations

import os

import pytest

from bastion.detectors.interface import ScanContext
from bastion.detectors.pii import PiiDetector, find_entities
from bastion.detectors.pii_redaction import Pseudonymizer, mask
from bastion.errors import ConfigError, CryptoError, InputError

POSITIVE = {
    "email": "write to jane.doe+news@example.co.uk today",
    "phone": "call me on +1 415-555-2671 after six",
    "payment_card": "card 4111 1111 1111 1111 expires soon",
    "iban": "pay to DE89 3704 0044 0532 0130 00 please",
    "national_id": "my SSN is 123-45-6789.",
    "ip_address": "the server is at 203.0.113.7 now",
    "street_address": "I live at 742 Evergreen Terrace, Springfield",
    "person_name": "Dear Mr. John Smith, thanks for your letter",
}
NEGATIVE = {
    "payment_card": "order 4111 1111 1111 1112 shipped",  # bad Luhn
    "iban": "ref DE89 3704 0044 0532 0130 01 attached",  # bad mod-97
    "national_id": "room 000-12-3456 upstairs",  # invalid SSN area
    "ip_address": "version 999.1.2.3 released",
}


@pytest.mark.parametrize("entity", sorted(POSITIVE))
def test_each_entity_type_is_found_with_its_span(entity: str) -> None:
    text = POSITIVE[entity]
    found = [e for e in find_entities(text) if e.entity == entity]
    assert found, entity
    value = text[found[0].span.start : found[0].span.end]
    assert value.strip() == value and len(value) >= 5


@pytest.mark.parametrize("entity", sorted(NEGATIVE))
def test_invalid_check_digits_are_rejected(entity: str) -> None:
    assert not [e for e in find_entities(NEGATIVE[entity]) if e.entity == entity]


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("codice fiscale RSSMRA85T10A562S", "it.codicefiscale"),
        ("DNI 12345678Z", "es.dni"),
        ("CPF 111.444.777-35", "br.cpf"),
        ("BSN: 111222333", "nl.bsn"),
        ("PESEL 44051401359", "pl.pesel"),
    ],
)
def test_national_id_schemes(text: str, scheme: str) -> None:
    assert any(e.scheme == scheme for e in find_entities(text))


def test_findings_never_contain_the_value() -> None:
    text = "mail jane.doe@example.com card 4111 1111 1111 1111"
    for f in PiiDetector().scan(text, ScanContext()):
        assert "jane" not in f.message and "4111" not in f.message
        assert all("jane" not in str(v) and "4111" not in str(v) for v in f.metadata.values())


def test_entity_filter_and_bad_options() -> None:
    only_email = PiiDetector(entities=["email"])
    assert {f.type for f in only_email.scan(POSITIVE["email"] + " " + POSITIVE["phone"], ScanContext())} == {
        "pii.email"
    }
    with pytest.raises(ConfigError):
        PiiDetector(regions="US")
    with pytest.raises(ConfigError):
        PiiDetector(entities=["dna"])


def test_mask_replaces_every_entity() -> None:
    text = "jane@example.com and +1 415-555-2671"
    assert mask(text, find_entities(text)) == "[EMAIL] and [PHONE]"


def test_pseudonyms_without_key_are_consistent_and_irreversible() -> None:
    text = "a@example.com, b@example.com, a@example.com"
    result = Pseudonymizer().pseudonymize(text, find_entities(text))
    assert result.text == "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>"
    assert not result.vault.sealed
    with pytest.raises(CryptoError):
        Pseudonymizer().restore(result.text, result.vault)


def test_keyed_pseudonyms_are_stable_and_reversible_only_with_the_key() -> None:
    key = os.urandom(64)
    text = "mail a@example.com or a@example.com, card 4111 1111 1111 1111"
    p = Pseudonymizer(key)
    first = p.pseudonymize(text, find_entities(text))
    again = Pseudonymizer(key).pseudonymize(text, find_entities(text))
    assert first.text == again.text
    assert "a@example.com" not in first.text and "4111" not in first.text
    assert first.text.count(first.text.split()[1]) == 2  # same value, same placeholder
    assert p.restore(first.text, first.vault) == text
    with pytest.raises(CryptoError):
        Pseudonymizer(os.urandom(64)).restore(first.text, first.vault)
    with pytest.raises(InputError):
        Pseudonymizer(b"short")


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is on 2024-01-01 at 10:00.",
        "we met on 12/03/2024 in Lyon",
        "upgrade to version 10.15.7 today",
        "Order #20240101123 shipped",
        "ticket 4839201184 closed",
    ],
)
def test_dates_versions_and_bare_order_numbers_are_not_phones(text: str) -> None:
    assert [e for e in find_entities(text, ("US", "GB", "DE", "FR")) if e.entity == "phone"] == []


@pytest.mark.parametrize(
    "text",
    ["call me at 6998603082", "phone: 02079460958", "tel. 0321538885", "ring 826-801-8159x08301 any time"],
)
def test_bare_numbers_after_a_phone_word_and_extensions_are_phones(text: str) -> None:
    assert [e.entity for e in find_entities(text, ("US", "GB", "FR"))] == ["phone"]


def test_twelve_digit_maestro_numbers_are_cards_only_with_a_maestro_prefix_and_luhn() -> None:
    assert [e.entity for e in find_entities("card 639084148522 please", ("US",))] == ["payment_card"]
    assert find_entities("ref 412345678903 please", ("US",)) == []  # 12 digits, not a Maestro prefix
