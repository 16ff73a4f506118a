"""The gateway's durable ledger wait: one shared deadline timer instead of a timer per call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from bastion.domain.events import AuditEvent, EventTag
from bastion.gateway.recording import CallRecorder, LedgerDeadlines

EVENT = AuditEvent(EventTag.GATEWAY_REQUEST_COMPLETED, "p_1", "model", "allowed")


class Recorder(CallRecorder):
    """A CallRecorder whose sink hands out futures the test settles (or never settles)."""

    def __init__(self, timeout_s: float) -> None:
        self._deadlines = LedgerDeadlines(timeout_s)
        self._background = set()
        self.futures: list[asyncio.Future[Any]] = []

    def record_future(self, event: AuditEvent) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def test_an_unsettled_write_times_out_and_the_call_is_told() -> None:
    async def main() -> bool:
        rec = Recorder(0.0)
        return await rec._record_durable(EVENT, rec.record_future)

    assert asyncio.run(main()) is False


def test_a_committed_write_is_reported_and_never_failed_later() -> None:
    async def main() -> None:
        rec = Recorder(0.0)
        task = asyncio.ensure_future(rec._record_durable(EVENT, rec.record_future))
        await asyncio.sleep(0)
        rec.futures[0].set_result(["receipt"])  # the writer committed before the deadline fired
        assert await task is True
        await asyncio.sleep(0)
        assert rec.futures[0].result() == ["receipt"]

    asyncio.run(main())


def test_a_failed_write_is_reported() -> None:
    async def main() -> bool:
        rec = Recorder(120.0)
        task = asyncio.ensure_future(rec._record_durable(EVENT, rec.record_future))
        await asyncio.sleep(0)
        rec.futures[0].set_exception(OSError("disk full"))
        return await task

    assert asyncio.run(main()) is False


def test_a_sink_that_refuses_the_event_is_reported() -> None:
    def refuse(event: AuditEvent) -> asyncio.Future[Any]:
        raise ValueError("not encodable")

    async def main() -> bool:
        return await Recorder(120.0)._record_durable(EVENT, refuse)

    assert asyncio.run(main()) is False


def test_a_cancelled_call_leaves_the_write_to_the_writer() -> None:
    async def main() -> None:
        rec = Recorder(120.0)
        task = asyncio.ensure_future(rec._record_durable(EVENT, rec.record_future))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the writer settles only futures that are not done: a cancelled one is skipped, no error
        assert rec.futures[0].done()

    asyncio.run(main())


def test_deadlines_fail_only_the_overdue_futures_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        d = LedgerDeadlines(0.0)
        settled, overdue = loop.create_future(), loop.create_future()
        d.watch(settled)
        d.watch(overdue)
        settled.set_result(1)
        with pytest.raises(TimeoutError):
            await overdue
        assert settled.result() == 1

    asyncio.run(main())


def test_deadlines_keep_working_on_a_new_event_loop() -> None:
    d = LedgerDeadlines(0.0)

    async def main() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        d.watch(future)
        with pytest.raises(TimeoutError):
            await future

    asyncio.run(main())
    asyncio.run(main())  # the first loop's timer is gone with it; the second loop arms its own


def test_a_future_within_its_deadline_is_left_alone() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        d = LedgerDeadlines(120.0)
        future: asyncio.Future[None] = loop.create_future()
        d.watch(future)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not future.done()
        future.set_result(None)

    asyncio.run(main())


def test_a_detached_write_is_kept_until_it_settles() -> None:
    async def main() -> None:
        rec = Recorder(120.0)
        with capture_logs() as logs:
            rec._record_detached(EVENT, rec.record_future)
            assert rec._background == {rec.futures[0]}  # drain waits for it
            rec.futures[0].set_result(["receipt"])
            await asyncio.sleep(0)
        assert rec._background == set() and logs == []

    asyncio.run(main())


@pytest.mark.parametrize("timeout_s", [0.0, 120.0])
def test_a_detached_write_that_fails_or_times_out_is_logged(timeout_s: float) -> None:
    async def main() -> list[Any]:
        rec = Recorder(timeout_s)
        with capture_logs() as logs:
            rec._record_detached(EVENT, rec.record_future)
            if timeout_s:
                rec.futures[0].set_exception(OSError("disk full"))
            for _ in range(3):
                await asyncio.sleep(0)
        assert rec._background == set()
        return logs

    logs = asyncio.run(main())
    assert [(e["event"], e["tag"]) for e in logs] == [("audit_record_failed", EVENT.tag.value)]


def test_a_detached_event_the_sink_refuses_is_logged() -> None:
    def refuse(event: AuditEvent) -> asyncio.Future[Any]:
        raise ValueError("not encodable")

    async def main() -> list[Any]:
        rec = Recorder(120.0)
        with capture_logs() as logs:
            rec._record_detached(EVENT, refuse)
        assert rec._background == set()
        return logs

    assert [e["error"] for e in asyncio.run(main())] == ["ValueError"]


class GatedSink:
    """A ledger with only ``arecord`` (no ``record_future``) that writes once the test opens it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.events: list[AuditEvent] = []

    async def arecord(self, event: AuditEvent) -> None:
        await self.open.wait()
        self.events.append(event)


def test_a_waited_write_outlives_its_cancelled_call_and_drain_waits_for_it() -> None:
    async def main() -> None:
        rec = Recorder(120.0)
        sink = GatedSink()
        rec.c = SimpleNamespace(audit=sink)  # type: ignore[assignment]
        call = asyncio.ensure_future(rec._record_waited(EVENT))
        await asyncio.sleep(0)
        call.cancel()  # a server giving up on the call while the ledger writes
        with pytest.raises(asyncio.CancelledError):
            await call
        assert len(rec._background) == 1  # what drain() gathers
        sink.open.set()
        await asyncio.gather(*rec._background)
        assert sink.events == [EVENT]
        assert not rec._background

    asyncio.run(main())
