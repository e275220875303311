"""Where a site process runs the work of its grants and completions.

On PostgreSQL: on the process's event loop, one at a time. Handing the work to a request
thread costs a thread wake-up each way, and every database round trip then hands the
interpreter lock between that thread and the loop: on the 2-CPU bench machine about 0.45 ms
of CPU per grant, a sixth of the site's cost (benchmarks/site.py, docs/scaling.md). More
grants at once come from more worker processes (``site serve --workers N``). Requests waiting
for their turn count in ``GrantAdmission``'s bound: beyond it they are refused busy between
two grants.

On SQLite: in the request thread pool, as before, because a grant may wait for the
database's write lock (``BEGIN IMMEDIATE``), which must not stop the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")


class GrantLane:
    """Run grant and completion work on the loop one at a time, or in the thread pool."""

    def __init__(self, *, on_loop: bool) -> None:
        self.on_loop = on_loop
        self.waiting = 0  # requests waiting for their turn on the loop
        self._turn = asyncio.Lock()  # FIFO: requests are served in the order they came

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the loop's turn: no other grant or completion starts until the block ends."""
        self.waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._turn.release()

    async def run(self, work: Callable[[], T]) -> T:
        """Return ``work()``, run as this lane runs work (its exceptions propagate)."""
        if not self.on_loop:
            return await anyio.to_thread.run_sync(work)
        async with self.turn():
            return work()
