"""The per-call record: what each pipeline step established, turned into ONE ledger event."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.domain.identity import Authentication
from bastion.gateway.wire import estimate_tokens

#: Guard states in the ledger. A guard that did not run is never "passed".
NOT_CONFIGURED = "not_configured"
NOT_RUN = "not_run"


@dataclass(slots=True)
class Call:
    """Mutable facts about one gateway call, filled in as the pipeline advances."""

    route: str
    client_ip: str
    t0: float = field(default_factory=time.perf_counter)
    auth: Authentication | None = None
    model: str = ""
    upstream: str = ""
    stream: bool = False
    steps: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    findings: list[JSONValue] = field(default_factory=list)
    hardening: list[str] = field(default_factory=list)
    guard_input: str = NOT_RUN
    guard_output: str = NOT_RUN
    prompt_sha256: str | None = None
    response_sha256: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False  # the provider reported no usage
    request_bytes: int = 0
    upstream_status: int | None = None
    upstream_us: int | None = None
    ttfb_us: int | None = None
    status: int = 0
    limiter_degraded: bool = False
    prompt_body: bytes | None = None  # kept only when content recording is on
    response_body: bytes | None = None
    content: Mapping[str, JSONValue] | None = None  # ciphertext digests from the content vault
    recorded: bool = False  # its ledger event was already written (a later failure adds none)

    @property
    def actor(self) -> str:
        return self.auth.principal.id if self.auth else "anonymous"

    def elapsed_us(self) -> int:
        return int((time.perf_counter() - self.t0) * 1_000_000)

    def set_tokens(self, usage: tuple[int, int] | None, output_chars: int) -> None:
        """The provider's usage; without one, an estimate that charges the prompt too (from the
        request's size: a huge prompt is never free) and the output relayed."""
        if usage is None:
            usage = (estimate_tokens(self.request_bytes), estimate_tokens(output_chars))
            self.tokens_estimated = True
        self.prompt_tokens, self.completion_tokens = usage

    def event(self, tag: EventTag, outcome: str) -> AuditEvent:
        """The ledger event for this call: facts, hashes and counts; never content or secrets."""
        auth = self.auth
        attrs: dict[str, JSONValue] = {
            "route": self.route,
            "status": self.status,
            "decision": outcome,
            "reasons": list(self.reasons),
            "steps": list(self.steps),
            "guards": {"input": self.guard_input, "output": self.guard_output},
            "latency_us": self.elapsed_us(),
            "client_ip": self.client_ip,
            "stream": self.stream,
        }
        if auth is not None:
            attrs["key_id"] = auth.key_id
            attrs["auth_method"] = auth.method.value
            if auth.principal.team:
                attrs["team"] = auth.principal.team
        if self.model:
            attrs["model"] = self.model
        if self.upstream:
            attrs["upstream"] = self.upstream
        if self.policies:
            attrs["policies"] = list(self.policies)
        if self.findings:
            attrs["findings"] = list(self.findings)
        if self.hardening:
            attrs["hardening"] = list(self.hardening)
        if self.prompt_sha256:
            attrs["prompt_sha256"] = self.prompt_sha256
        if self.response_sha256:
            attrs["response_sha256"] = self.response_sha256
        if self.prompt_tokens or self.completion_tokens:
            tokens: dict[str, JSONValue] = {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
            }
            if self.tokens_estimated:
                tokens["estimated"] = True
            attrs["tokens"] = tokens
        if self.upstream_status is not None:
            attrs["upstream_status"] = self.upstream_status
        if self.upstream_us is not None:
            attrs["upstream_latency_us"] = self.upstream_us
        if self.ttfb_us is not None:
            attrs["upstream_ttfb_us"] = self.ttfb_us
        if self.limiter_degraded:
            attrs["limits_enforced"] = False
        if self.content is not None:
            attrs.update(self.content)
        return AuditEvent(
            tag=tag, actor=self.actor, target=self.model or self.route, outcome=outcome, attributes=attrs
        )
