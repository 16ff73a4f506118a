"""The gateway as ``create_app`` wires it: real identity service, Cedar, SQLite ledger, demo upstream.

One ledger event per call (no separate authentication event), key usage recorded for access
reviews, encrypted content recording with crypto-shredding through ``bastion erase``, fail closed
when the database goes away, and LangChain's ``ChatOpenAI`` against the live server.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import Engine, text

from bastion.app import GATEWAY_SERVICE, create_app
from bastion.cli.main import main
from bastion.config import Settings, load_settings
from bastion.domain.identity import Role
from bastion.services.content_vault import ContentErasedError, ContentVault
from bastion.services.keys import KeyService, TrustedLocalOperator, local_operator, provider_from_settings
from bastion.services.runtime import Runtime
from support.net import serve

GATEWAY_TAGS = ("gateway:request:completed", "gateway:request:blocked", "gateway:request:failed")


def ledger_rows(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    """(tag, entry) of every ledger entry, in order."""
    with engine.connect() as c:
        rows = c.execute(text("SELECT tag, canonical FROM ledger_entries ORDER BY seq")).all()
    return [(str(tag), json.loads(canon)) for tag, canon in rows]


@dataclass
class App:
    url: str
    rt: Runtime
    token: str
    principal_id: str
    key_id: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.token, max_retries=0, timeout=10)


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[App]:
    rt = Runtime.open(settings)
    try:
        p = rt.identity.create_principal("alice", roles=[Role.USER], team="blue")
        created = rt.identity.create_key(p.id, name="app")
        with serve(create_app(settings, rt)) as url:
            yield App(url, rt, created.token, p.id, created.key.key_id)
    finally:
        rt.close()


def test_each_call_is_one_ledger_event_and_usage_reaches_access_review(tmp_path: Path) -> None:
    with running(load_settings(None, data_dir=str(tmp_path / "data"))) as app:
        tags_before = [t for t, _ in ledger_rows(app.rt.engine)]
        with app.client() as c:
            for i in range(5):
                r = c.chat.completions.create(
                    model="bastion-demo", messages=[{"role": "user", "content": f"hello {i}"}]
                )
                assert r.choices[0].message.content
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=app.url + "/v1", api_key="bst_nope", max_retries=0).models.list()
        deadline = time.monotonic() + 5
        while not app.rt.identity.key_usage([app.key_id]) and time.monotonic() < deadline:
            time.sleep(0.05)
        usage = app.rt.identity.key_usage([app.key_id])
        rows = ledger_rows(app.rt.engine)[len(tags_before) :]
    assert [(u.operation, u.model) for u in usage] == [("model:invoke", "bastion-demo")]
    tags = [t for t, _ in rows]
    assert tags.count("gateway:request:completed") == 5
    assert "identity:authentication:succeeded" not in tags  # the call's own event records the authentication
    assert "identity:authentication:failed" in tags
    assert len([t for t in tags if t.startswith("gateway:request:")]) == 6  # 5 calls + the 401
    for tag, entry in rows:
        if tag == "gateway:request:completed":
            a = entry["attributes"]
            assert a["key_id"] == app.key_id and a["auth_method"] == "api_key" and a["steps"][0] == "authn"
            assert entry["actor"] == app.principal_id


def test_revocation_takes_effect_at_the_gateway_at_once(tmp_path: Path) -> None:
    with running(load_settings(None, data_dir=str(tmp_path / "data"))) as app, app.client() as c:
        c.chat.completions.create(model="bastion-demo", messages=[{"role": "user", "content": "hi"}])
        app.rt.identity.revoke_key(app.key_id, actor="test")  # as the admin API does, in this process
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="bastion-demo", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/admin/v1/whoami", "/healthz"])
def test_oversized_headers_are_431_and_recorded(tmp_path: Path, path: str) -> None:
    with running(load_settings(None, data_dir=str(tmp_path / "data"))) as app:
        limit = app.rt.settings.server.max_header_bytes
        resp = httpx.get(app.url + path, headers={"X-Padding": "a" * (limit + 1)}, timeout=10)
        assert resp.status_code == 431
        assert resp.json()["error"]["code"] == "request_header_fields_too_large"
        ok = httpx.get(app.url + "/healthz", headers={"X-Padding": "a" * (limit // 2)}, timeout=10)
        assert ok.status_code == 200
        rows = ledger_rows(app.rt.engine)
    rejected = [e for t, e in rows if t == "gateway:request:rejected"]
    assert rejected
    assert rejected[-1]["attributes"]["route"] == "headers"


@pytest.fixture
def content_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "crypto": {
                    "record_content": True,
                    "key_id": "content",
                    "local": {"path": str(tmp_path / "keys" / "ring.json"), "scrypt_n": 1024},
                },
            }
        )
    )
    monkeypatch.setenv("BASTION_CONFIG", str(cfg))
    monkeypatch.setenv("BASTION_KEYRING_PASSPHRASE", "test passphrase")
    assert main(["keys", "create-kek"]) == 0
    return load_settings(cfg)


def test_recorded_content_is_sealed_then_crypto_shredded_and_the_ledger_still_verifies(
    content_settings: Settings,
) -> None:
    with running(content_settings) as app:
        with app.client() as c:
            r = c.chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "my secret plan"}]
            )
            assert "my secret plan" in (r.choices[0].message.content or "")
            chunks = list(
                c.chat.completions.create(
                    model="bastion-demo", messages=[{"role": "user", "content": "streamed plan"}], stream=True
                )
            )
            assert chunks
        calls = [e for t, e in ledger_rows(app.rt.engine) if t == "gateway:request:completed"]
        assert len(calls) == 2
        engine = app.rt.engine
        provider = provider_from_settings(content_settings)
        try:
            vault = ContentVault(
                engine, KeyService(provider, TrustedLocalOperator(), app.rt.audit), key_id="content"
            )
            for call, said in zip(calls, ("my secret plan", "streamed plan"), strict=True):
                a = call["attributes"]
                for kind in ("prompt", "response"):
                    rid = a[f"content_{kind}_record"]
                    assert vault.ciphertext_digest(rid) == a[f"content_{kind}_sha256"]
                    assert said in vault.read(GATEWAY_SERVICE, rid)
                assert said not in json.dumps(a)
            with engine.connect() as conn:
                blobs = conn.execute(text("SELECT ciphertext FROM content_records")).scalars().all()
            assert blobs and all(b"plan" not in bytes(b) for b in blobs)
            # `bastion erase SUBJECT`: the subject is the caller's principal id
            assert main(["erase", app.principal_id, "--yes"]) == 0
            rid = calls[0]["attributes"]["content_prompt_record"]
            with pytest.raises(ContentErasedError):
                vault.read(local_operator(), rid)
            assert vault.ciphertext_digest(rid) == calls[0]["attributes"]["content_prompt_sha256"]
        finally:
            provider.close()
        assert app.rt.audit.verify().ok


def test_database_unavailable_fails_closed_with_503(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=str(tmp_path / "data"))
    with running(settings) as app:
        db = settings.data_dir / "bastion.db"
        with app.client() as c:
            c.chat.completions.create(model="bastion-demo", messages=[{"role": "user", "content": "up"}])
            # the database disappears: pooled connections dropped, the file replaced by a directory
            app.rt.engine.dispose()
            moved = tmp_path / "moved"
            moved.mkdir()
            for f in settings.data_dir.glob("bastion.db*"):
                shutil.move(str(f), moved / f.name)
            db.mkdir()
            try:
                for _ in range(2):
                    with pytest.raises(openai.APIStatusError) as e:
                        c.chat.completions.create(
                            model="bastion-demo", messages=[{"role": "user", "content": "down"}]
                        )
                    assert e.value.status_code == 503
                other = openai.OpenAI(base_url=app.url + "/v1", api_key=app.token[:-2] + "xx", max_retries=0)
                with pytest.raises(openai.APIStatusError) as e2:
                    other.models.list()
                assert e2.value.status_code in (401, 503)
                import httpx

                assert httpx.get(app.url + "/readyz", timeout=5).status_code == 503
            finally:
                db.rmdir()
                for f in moved.iterdir():
                    shutil.move(str(f), settings.data_dir / f.name)


def test_langchain_chat_openai_against_live_bastion(tmp_path: Path) -> None:
    import langchain_openai  # the `test` extra installs it

    with running(load_settings(None, data_dir=str(tmp_path / "data"))) as app:
        llm = langchain_openai.ChatOpenAI(
            model="bastion-demo",
            base_url=app.url + "/v1",
            api_key=SecretStr(app.token),
            max_retries=0,
            timeout=10,
        )
        msg = llm.invoke("hello from langchain")
        assert "hello from langchain" in str(msg.content)
        streamed = "".join(str(chunk.content) for chunk in llm.stream("stream me"))
        assert "stream me" in streamed
        bad = langchain_openai.ChatOpenAI(
            model="bastion-demo", base_url=app.url + "/v1", api_key=SecretStr("bst_wrong"), max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            bad.invoke("x")
        denied = langchain_openai.ChatOpenAI(
            model="no-such-model", base_url=app.url + "/v1", api_key=SecretStr(app.token), max_retries=0
        )
        with pytest.raises(openai.NotFoundError):
            denied.invoke("x")
        tags = [t for t, _ in ledger_rows(app.rt.engine)]
    assert tags.count("gateway:request:completed") == 2
