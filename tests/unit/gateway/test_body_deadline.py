"""Request bodies have a deadline (``server.body_timeout_s``): one shared timer, a 408 for the call
whose body stalls, nothing for the calls around it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bastion.gateway.errors import ApiError
from bastion.gateway.intake import BodyDeadlines, read_body


def _receiver(parts: list[bytes], *, stall: bool = False) -> Any:
    """An ASGI ``receive`` that hands out ``parts`` (the last one ends the body unless ``stall``),
    then, when stalling, waits for ever."""
    queue = list(parts)

    async def receive() -> dict[str, Any]:
        if not queue:
            await asyncio.Event().wait()
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": stall or bool(queue)}

    return receive


def test_a_stalled_body_is_a_408_and_its_neighbours_are_untouched() -> None:
    async def main() -> None:
        deadlines = BodyDeadlines(0.05)
        fast = await read_body(_receiver([b"ab", b"cd"]), 1000, deadlines)
        assert fast == b"abcd"
        stalled = asyncio.ensure_future(read_body(_receiver([b"{"], stall=True), 1000, deadlines))
        await asyncio.sleep(0.02)
        late = asyncio.ensure_future(read_body(_receiver([b"x"]), 1000, deadlines))  # started later
        with pytest.raises(ApiError) as e:
            await asyncio.wait_for(stalled, 2)
        assert e.value.status == 408 and e.value.code == "request_timeout"
        assert await late == b"x"
        # the task that got the 408 is not left cancelled: it can still answer and record
        assert not stalled.cancelled()

    asyncio.run(main())


def test_a_server_cancelling_a_read_is_not_turned_into_a_408() -> None:
    """Shutdown cancels calls in flight: that cancellation goes on, deadline or not."""

    async def main() -> None:
        deadlines = BodyDeadlines(0.05)
        task = asyncio.ensure_future(read_body(_receiver([b"{"], stall=True), 1000, deadlines))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.08)  # the deadline passes: nothing is left to cancel

    asyncio.run(main())


def test_the_deadline_is_for_the_whole_body_not_each_part() -> None:
    """A caller that sends one byte just often enough to dodge a per-read timeout still ends."""

    async def main() -> None:
        deadlines = BodyDeadlines(0.1)

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(0.02)
            return {"type": "http.request", "body": b"x", "more_body": True}

        with pytest.raises(ApiError) as e:
            await asyncio.wait_for(read_body(receive, 10_000, deadlines), 2)
        assert e.value.status == 408

    asyncio.run(main())
