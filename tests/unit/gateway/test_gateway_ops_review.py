"""Review of the gateway's operations surface: ``/metrics`` (requests, latency, blocks by detector,
upstream errors, calls in flight), ``/healthz`` and ``/readyz``, logs without content or secrets,
request-size limits, TLS from config and the drain on shutdown.

Properties that hold are plain tests; defects found are strict xfails asserting the safe behaviour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from structlog.testing import capture_logs

from bastion.cli.serve import APP_FACTORY, _install_tls_context, uvicorn_options
from bastion.config import Settings
from bastion.crypto.tls import make_dev_certs
from bastion.errors import ConfigError, UpstreamError
from bastion.gateway import GatewayApp
from bastion.gateway.deps import ReadinessProbe
from bastion.gateway.upstream import UpstreamReply
from bastion.logging import REDACTED, redact

from .harness import asgi_scope
from .test_gateway_review3_support import (
    CHAT,
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    body_of,
    build,
    chat_reply,
    drive,
    run_session,
    settings,
    text_stream,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]


# -- helpers ------------------------------------------------------------------------------------------


def get_scope(
    path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return asgi_scope(path, method=method, headers=headers or [])


def post(path: str, key: str = "alice-key", extra: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    headers = [(b"authorization", b"Bearer " + key.encode()), (b"content-type", b"application/json")]
    return get_scope(path, "POST", headers + (extra or []))


async def empty() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def parts(*chunks: bytes, then: str = "end") -> Receive:
    """A receive handing out ``chunks`` (``more_body`` on all but the last when ``then`` is "end");
    with ``then`` "disconnect" the caller leaves after them, with "hang" it goes idle."""
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        if queue:
            body = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(queue) or then != "end"}
        if then == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def get(app: GatewayApp, path: str) -> Answer:
    return await drive(app, get_scope(path), empty)


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``."""
    out = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out += s.value
    return out


def label_values(text: str) -> set[str]:
    return {
        v
        for family in text_string_to_metric_families(text)
        for s in family.samples
        for k, v in s.labels.items()
        if k != "le"
    }


def metrics_of(gw: Gw) -> str:
    return gw.app.gateway.metrics.render().decode()


def big(n: int) -> bytes:
    return orjson.dumps(body_of([{"role": "user", "content": "x" * n}]))


# -- /healthz, /readyz, /metrics ------------------------------------------------------------------------


def test_ops_endpoints_answer_without_credentials_and_show_no_caller_data() -> None:
    gw = build()

    async def go(gw: Gw) -> tuple[Answer, Answer, Answer]:
        assert (await acall(gw.app, body_of(), key="alice-key")).status == 200
        return await get(gw.app, "/healthz"), await get(gw.app, "/readyz"), await get(gw.app, "/metrics")

    health, ready, metrics = run_session(gw, go)
    assert (health.status, health.json()) == (200, {"status": "ok"})
    assert (ready.status, ready.json()) == (200, {"status": "ready"})
    assert metrics.status == 200
    assert metrics.headers[b"content-type"].startswith(b"text/plain")
    text = metrics.body.decode()
    assert total(text, "bastion_gateway_requests_total", route="chat", status="200") == 1
    # no caller identity, key id, process/platform/version collectors in the gateway's own registry
    for leak in ("alice", "kid-", "python_info", "process_", "version"):
        assert leak not in text


@pytest.mark.parametrize(
    ("case", "expected"),
    [("up", 200), ("not_ready", 503), ("raises", 503), ("draining", 503)],
)
def test_readyz_reflects_readiness_and_draining(case: str, expected: int) -> None:
    class Broken:
        async def ready(self) -> bool:
            raise OSError("database down")

    class NotReady:
        async def ready(self) -> bool:
            return False

    gw = build()
    probes: dict[str, ReadinessProbe] = {"not_ready": NotReady(), "raises": Broken()}
    readiness = probes.get(case)
    if readiness is not None:
        gw.app.gateway.c = dataclasses.replace(gw.app.gateway.c, readiness=readiness)

    async def go(gw: Gw) -> Answer:
        if case == "draining":
            gw.app.gateway.draining = True
        return await get(gw.app, "/readyz")

    answer = run_session(gw, go)
    assert answer.status == expected
    assert answer.json()["status"] == ("ready" if expected == 200 else "unavailable")


def test_readyz_is_not_ready_while_a_fail_closed_limit_store_is_down() -> None:
    s = settings(
        limits={
            "storage": "redis",
            "redis_url": "redis://127.0.0.1:1/0",  # nothing listens there
            "on_unavailable": "closed",
            "per_key": {"requests_per_minute": 100},
        }
    )
    gw = build(s)

    async def go(gw: Gw) -> tuple[Answer, Answer]:
        return await acall(gw.app, body_of()), await get(gw.app, "/readyz")

    call, ready = run_session(gw, go)
    assert call.status == 503 and call.json()["error"]["code"] == "limiter_unavailable"
    assert ready.status == 503


def test_lifespan_shutdown_drains_then_refuses_new_calls_and_readyz_says_unavailable() -> None:
    gw = build()

    async def go(gw: Gw) -> tuple[list[str], Answer, Answer]:
        msgs = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return msgs.pop(0)

        async def send(msg: Any) -> None:
            sent.append(msg["type"])

        await gw.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        return sent, await acall(gw.app, body_of()), await get(gw.app, "/readyz")

    sent, call, ready = run_session(gw, go)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert gw.app.gateway.draining
    assert call.status == 503 and call.json()["error"]["code"] == "unavailable"
    assert ready.status == 503


# -- metric labels stay bounded -------------------------------------------------------------------------


def test_metric_labels_never_take_caller_controlled_values() -> None:
    gw = build()
    junk = [f"j{secrets.token_hex(6)}" for _ in range(8)]

    async def go(gw: Gw) -> str:
        app = gw.app
        await acall(app, body_of(model=junk[0]))  # unknown model: 404
        await drive(app, post(f"/v1/{junk[1]}"), empty)  # unknown /v1 path
        await drive(
            app, get_scope(f"/v1/models/{junk[2]}", headers=[(b"authorization", b"Bearer alice-key")]), empty
        )
        await drive(app, get_scope(CHAT, method=junk[3].upper()), empty)  # odd method: 405
        await drive(app, post(CHAT, key=junk[4]), parts(orjson.dumps(body_of())))  # unknown key
        await drive(
            app, post(CHAT, extra=[(b"x-forwarded-for", junk[5].encode())]), parts(orjson.dumps(body_of()))
        )
        await drive(app, post(CHAT, extra=[(b"x-" + junk[6].encode(), b"v" * 40_000)]), empty)  # 431
        await acall(app, body_of(user=junk[7], temperature=0.5))
        return (await get(app, "/metrics")).body.decode()

    text = run_session(gw, go)
    for j in junk:
        assert j not in text and j.upper() not in text
    expected = {"chat", "v1", "models", "headers", "m", "-", "demo", "prompt", "completion"}
    statuses = {"200", "401", "404", "405", "431"}
    outcomes = {"allowed", "rejected", "error", "blocked", "denied", "failed", "cancelled", "limited"}
    assert label_values(text) <= expected | statuses | outcomes


# -- every exit of a call counts once, and leaves nothing in flight -------------------------------------


@dataclass
class Case:
    gw: Callable[[], Gw]
    act: Callable[[Gw], Awaitable[list[Answer]]]
    statuses: list[int]


def _one(fn: Callable[[Gw], Awaitable[Answer]]) -> Callable[[Gw], Awaitable[list[Answer]]]:
    async def act(gw: Gw) -> list[Answer]:
        return [await fn(gw)]

    return act


def _small_body() -> Gw:
    return build(settings(server={"max_body_bytes": 1024}))


def _slow_body() -> Gw:
    return build(settings(server={"body_timeout_s": 0.05}))


def _hanging_upstream() -> Gw:
    return build(up=ScriptedUpstream(unary_hangs=True))


def _hanging_stream() -> Gw:
    return build(up=ScriptedUpstream(events=text_stream(["a", "b", "c"]), hang_after=1))


def _one_per_minute() -> Gw:
    return build(settings(limits={"per_key": {"requests_per_minute": 1}}))


def _unreachable() -> Gw:
    return build(up=ScriptedUpstream(raises=UpstreamError("connection refused", status=502)))


async def _cancel_on_hang(gw: Gw) -> Answer:
    return await acall(gw.app, body_of(), cancel_when=gw.up.hanging)


async def _leave_on_hang(gw: Gw) -> Answer:
    return await acall(gw.app, body_of(stream=True), leave_when=gw.up.hanging)


async def _twice(gw: Gw) -> list[Answer]:
    return [await acall(gw.app, body_of()), await acall(gw.app, body_of())]


async def _draining(gw: Gw) -> Answer:
    gw.app.gateway.draining = True
    return await acall(gw.app, body_of())


CASES: dict[str, Case] = {
    "ok": Case(build, _one(lambda gw: acall(gw.app, body_of())), [200]),
    "unknown_key": Case(build, _one(lambda gw: acall(gw.app, body_of(), key="nobody")), [401]),
    "unknown_model": Case(build, _one(lambda gw: acall(gw.app, body_of(model="zzz"))), [404]),
    "bad_json": Case(build, _one(lambda gw: acall(gw.app, b"{not json")), [400]),
    "too_large_one_chunk": Case(_small_body, _one(lambda gw: acall(gw.app, big(2000))), [413]),
    "too_large_chunked": Case(
        _small_body, _one(lambda gw: drive(gw.app, post(CHAT), parts(b" " * 600, b" " * 600, b"{}"))), [413]
    ),
    "too_large_lying_content_length": Case(
        _small_body,
        _one(
            lambda gw: drive(
                gw.app, post(CHAT, extra=[(b"content-length", b"10")]), parts(b" " * 600, b" " * 600, b"{}")
            )
        ),
        [413],
    ),
    "left_mid_body": Case(
        build, _one(lambda gw: drive(gw.app, post(CHAT), parts(b'{"model":', then="disconnect"))), [0]
    ),
    "body_timeout": Case(
        _slow_body, _one(lambda gw: drive(gw.app, post(CHAT), parts(b'{"model":', then="hang"))), [408]
    ),
    "cancelled_waiting_upstream": Case(_hanging_upstream, _one(_cancel_on_hang), [0]),
    "stream_caller_left": Case(_hanging_stream, _one(_leave_on_hang), [200]),
    "rate_limited": Case(_one_per_minute, _twice, [200, 429]),
    "upstream_unreachable": Case(_unreachable, _one(lambda gw: acall(gw.app, body_of())), [502]),
    "wrong_method": Case(build, _one(lambda gw: drive(gw.app, get_scope(CHAT), empty)), [405]),
    "unknown_v1_path": Case(build, _one(lambda gw: drive(gw.app, post("/v1/nope"), empty)), [404]),
    "draining": Case(build, _one(_draining), [503]),
    "headers_too_large": Case(
        build, _one(lambda gw: drive(gw.app, post(CHAT, extra=[(b"x-pad", b"p" * 40_000)]), empty)), [431]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_exit_is_counted_once_with_its_latency_and_nothing_stays_in_flight(name: str) -> None:
    case = CASES[name]
    gw = case.gw()
    answers = run_session(gw, case.act)
    assert [a.status for a in answers] == case.statuses
    text = metrics_of(gw)
    n = len(answers)
    assert total(text, "bastion_gateway_requests_total") == n
    assert total(text, "bastion_gateway_request_seconds_count") == n
    assert total(text, "bastion_gateway_in_flight") == 0
    assert gw.app.gateway.in_flight == 0
    for a in answers:
        # a caller gone (no answer, or a stream it left) is 499 in the metrics
        gone = a.status == 0 or name == "stream_caller_left"
        assert total(text, "bastion_gateway_requests_total", status="499" if gone else str(a.status)) >= 1
    if name == "rate_limited":
        assert total(text, "bastion_gateway_limited_total", reason="rate") == 1


def test_in_flight_counts_a_call_while_it_waits_upstream() -> None:
    gw = _hanging_upstream()

    async def go(gw: Gw) -> tuple[float, float]:
        task = asyncio.ensure_future(acall(gw.app, body_of()))
        await gw.up.hanging.wait()
        during = total((await get(gw.app, "/metrics")).body.decode(), "bastion_gateway_in_flight")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return during, total(metrics_of(gw), "bastion_gateway_in_flight")

    during, after = run_session(gw, go)
    assert (during, after) == (1, 0)


# -- blocks by detector -----------------------------------------------------------------------------------

DENY: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["denylist"],
    "options": {"denylist": {"terms": ["zeus"]}},
}


@pytest.mark.parametrize("direction", ["input", "output"])
def test_a_blocked_call_is_counted_under_its_detector_and_direction(direction: str) -> None:
    prompt, answer = ("tell me of zeus", "fine") if direction == "input" else ("hi", "zeus says hi")
    gw = build(settings(guards=DENY), ScriptedUpstream(reply=UpstreamReply(200, chat_reply(answer))))
    a = run_session(gw, lambda gw: acall(gw.app, body_of([{"role": "user", "content": prompt}])))
    assert a.status == 400 and a.json()["error"]["code"] == "content_filter"
    text = metrics_of(gw)
    assert total(text, "bastion_gateway_guard_blocks_total", detector="denylist", direction=direction) == 1
    assert total(text, "bastion_gateway_guard_blocks_total") == 1
    assert total(text, "bastion_gateway_requests_total", outcome="blocked", status="400") == 1


def test_a_blocked_stream_is_counted_under_its_detector() -> None:
    up = ScriptedUpstream(events=text_stream(["the word ", "zeus", " again and more text"]))
    gw = build(settings(guards=DENY), up)
    a = run_session(gw, lambda gw: acall(gw.app, body_of(stream=True)))
    assert a.error_event() is not None and not a.done()
    text = metrics_of(gw)
    assert total(text, "bastion_gateway_guard_blocks_total", detector="denylist", direction="output") == 1


def test_a_call_blocked_for_several_findings_counts_as_one_block() -> None:
    gw = build(settings(guards=DENY))
    a = run_session(gw, lambda gw: acall(gw.app, body_of([{"role": "user", "content": "zeus zeus zeus"}])))
    assert a.status == 400
    assert total(metrics_of(gw), "bastion_gateway_guard_blocks_total", direction="input") == 1


# -- upstream errors --------------------------------------------------------------------------------------

UPSTREAM_FAILURES: dict[str, tuple[ScriptedUpstream, bool, int]] = {
    # name: (upstream, stream?, the caller's status)
    "unreachable": (ScriptedUpstream(raises=UpstreamError("refused", status=502)), False, 502),
    "timed_out": (ScriptedUpstream(raises=UpstreamError("timed out", status=504)), False, 504),
    "circuit_open": (ScriptedUpstream(raises=UpstreamError("circuit open", status=503)), False, 503),
    "status_500": (ScriptedUpstream(reply=UpstreamReply(500, b"oops")), False, 502),
    "status_401": (ScriptedUpstream(reply=UpstreamReply(401, b"{}")), False, 502),
    "status_429": (ScriptedUpstream(reply=UpstreamReply(429, b"{}", "3")), False, 429),
    "garbage": (ScriptedUpstream(reply=UpstreamReply(200, b"<html>")), False, 502),
    "stream_refused": (
        ScriptedUpstream(stream_status=UpstreamReply(500, b"oops")),
        True,
        502,
    ),
    "stream_unreachable": (ScriptedUpstream(raises=UpstreamError("refused", status=502)), True, 502),
    "stream_broke": (ScriptedUpstream(events=text_stream(["a", "b", "c"]), fail_after=1), True, 200),
    "stream_garbage_first_event": (ScriptedUpstream(events=[b"{not json", b"[DONE]"]), True, 502),
    "stream_garbage_later_event": (
        ScriptedUpstream(events=[*text_stream(["a"])[:1], b"{not json"]),
        True,
        200,
    ),
}


@pytest.mark.parametrize("name", list(UPSTREAM_FAILURES))
def test_every_kind_of_upstream_failure_is_counted(name: str) -> None:
    template, stream, status = UPSTREAM_FAILURES[name]
    up = ScriptedUpstream(
        events=list(template.events),
        reply=template.reply,
        fail_after=template.fail_after,
        stream_status=template.stream_status,
        raises=template.raises,
    )
    gw = build(up=up)
    a = run_session(gw, lambda gw: acall(gw.app, body_of(stream=stream)))
    assert a.status == status
    if stream and status == 200:
        assert a.error_event() is not None
    text = metrics_of(gw)
    assert total(text, "bastion_gateway_upstream_errors_total", upstream="demo") == 1
    assert total(text, "bastion_gateway_requests_total", outcome="error") == 1


# -- logs -------------------------------------------------------------------------------------------------

PROMPT_MARK = "PROMPT-MARK-7f3a"
ANSWER_MARK = "ANSWER-MARK-91bc"


class Crashing:
    name = "demo"

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        raise RuntimeError(f"bug while sending {payload!r}")

    async def open_stream(self, path: str, payload: bytes) -> Any:
        raise RuntimeError(f"bug while sending {payload!r}")

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("what", ["crash", "upstream_5xx", "ledger_down", "stream_broke"])
def test_logs_never_carry_content_keys_or_caller_strings(what: str) -> None:
    up: Any = ScriptedUpstream(reply=UpstreamReply(200, chat_reply(ANSWER_MARK)))
    stream = False
    if what == "crash":
        up = Crashing()
    elif what == "upstream_5xx":
        up = ScriptedUpstream(reply=UpstreamReply(500, f"{ANSWER_MARK} sk-provider-secret-123".encode()))
    elif what == "stream_broke":
        up, stream = ScriptedUpstream(events=text_stream([ANSWER_MARK, "b", "c"]), fail_after=2), True
    gw = build(up=up)
    if what == "ledger_down":
        gw.audit.fail = True
    injected = 'm\n{"level":"critical","event":"forged"}'
    with capture_logs() as logs:
        run_session(
            gw,
            lambda gw: acall(
                gw.app, body_of([{"role": "user", "content": PROMPT_MARK}], stream=stream, user=injected)
            ),
        )
        run_session(gw, lambda gw: acall(gw.app, body_of(model=injected)))
    assert logs, "each of these failures is logged"
    dumped = repr(logs)
    for secret in (PROMPT_MARK, ANSWER_MARK, "alice-key", "sk-provider-secret", "forged", "Bearer"):
        assert secret not in dumped


def test_the_log_redactor_blanks_sensitive_keys_and_json_lines_cannot_be_forged() -> None:
    event: dict[str, Any] = {
        "event": "probe",
        "authorization": "Bearer bst_live",
        "Provider_API_Key": "sk-live",
        "access_token": "eyJ",
        "prompt_text": "hello",
        "messages": [{"role": "user", "content": "hi"}],
        "completion": "answer",
        "status": 200,
        "note": 'line one\n{"event":"forged"}',
    }
    out = redact(None, "warning", event)
    for key in ("authorization", "Provider_API_Key", "access_token", "prompt_text", "messages", "completion"):
        assert out[key] == REDACTED
    assert out["status"] == 200
    line = structlog.processors.JSONRenderer()(None, "warning", out)
    assert isinstance(line, str) and "\n" not in line
    assert orjson.loads(line)["note"].startswith("line one\n")


# -- request-size limits ------------------------------------------------------------------------------------


def test_a_body_at_the_limit_passes_and_one_byte_more_is_413() -> None:
    limit = 1024
    gw = build(settings(server={"max_body_bytes": limit}))
    head = orjson.dumps(body_of([{"role": "user", "content": ""}]))
    fits = head.replace(b'"content":""', b'"content":"' + b"x" * (limit - len(head)) + b'"')
    assert len(fits) == limit

    async def go(gw: Gw) -> tuple[Answer, Answer]:
        a = await drive(gw.app, post(CHAT), parts(fits[:500], fits[500:]))
        b = await drive(gw.app, post(CHAT), parts(fits[:500], fits[500:] + b" "))
        return a, b

    a, b = run_session(gw, go)
    assert a.status == 200
    assert b.status == 413 and b.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("declared", [b"-1", b"abc", b"1e9", b"10"])
def test_a_garbage_or_understated_content_length_changes_nothing_the_bytes_are_counted(
    declared: bytes,
) -> None:
    """(A declared length over the limit is refused up front: see the next test.)"""
    gw = _small_body()

    async def go(gw: Gw) -> tuple[Answer, Answer]:
        ok = await drive(
            gw.app, post(CHAT, extra=[(b"content-length", declared)]), parts(orjson.dumps(body_of()))
        )
        big_one = await drive(
            gw.app, post(CHAT, extra=[(b"content-length", declared)]), parts(b" " * 800, b" " * 800)
        )
        return ok, big_one

    ok, big_one = run_session(gw, go)
    assert ok.status == 200 and big_one.status == 413


def test_a_declared_content_length_over_the_limit_is_refused_before_reading() -> None:
    gw = _small_body()
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads == 1:
            return {"type": "http.request", "body": b"{", "more_body": True}
        return {"type": "http.disconnect"}

    a = run_session(
        gw, lambda gw: drive(gw.app, post(CHAT, extra=[(b"content-length", b"1000000")]), receive)
    )
    assert a.status == 413
    assert reads == 0


# -- TLS from config (bastion serve) ------------------------------------------------------------------------


def _tls_settings(cert: Path, key: Path, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "environment": "development",
            "server": {"tls_cert_file": str(cert), "tls_key_file": str(key)},
            **extra,
        }
    )


def test_tls_options_carry_the_configured_pair_and_modern_ciphers(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path)
    options = uvicorn_options(_tls_settings(certs.server_cert, certs.server_key))
    assert options["ssl_certfile"] == str(certs.server_cert)
    assert options["ssl_keyfile"] == str(certs.server_key)
    assert "ECDHE" in options["ssl_ciphers"]
    assert options["proxy_headers"] is False and options["access_log"] is False


@pytest.mark.parametrize("problem", ["missing", "mismatched"])
def test_a_bad_tls_pair_is_a_clear_config_error(tmp_path: Path, problem: str) -> None:
    if problem == "missing":
        s = _tls_settings(tmp_path / "nope.pem", tmp_path / "nope-key.pem")
    else:
        a, b = make_dev_certs(tmp_path / "a"), make_dev_certs(tmp_path / "b")
        s = _tls_settings(a.server_cert, b.server_key)
    config = uvicorn.Config(APP_FACTORY, **uvicorn_options(s))
    with pytest.raises(ConfigError):
        _install_tls_context(config, s)


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path)
    with pytest.raises(ValidationError):
        Settings.model_validate(
            {
                "environment": "production",
                "crypto": {"provider": "vault"},
                "ledger": {"signing_key_file": str(tmp_path / "signing.pem")},
                "server": {"host": "0.0.0.0", "tls_cert_file": str(certs.server_cert)},
            }
        )


def test_several_workers_still_verify_client_certificates(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path, clients=["ingest"])
    s = _tls_settings(
        certs.server_cert,
        certs.server_key,
        tls={"client_ca_file": str(certs.ca_cert), "client_cert_required": True},
        gateway={"limits": {"per_worker_counts": True}},
    )
    s = s.model_copy(update={"server": s.server.model_copy(update={"workers": 2})})
    options = {k: v for k, v in uvicorn_options(s).items() if k != "factory"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = uvicorn.Config(app, **options)  # what each worker process does with these options
    config.load()
    assert isinstance(config.ssl, ssl.SSLContext)
    assert config.ssl.verify_mode == ssl.CERT_REQUIRED
