"""asyncio helpers shared by the suit emulator and the gateway transfer."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["async_cancel_and_wait"]

# Pause between cancel requests.  On Python 3.11, asyncio.wait_for (used
# inside bumble) swallows a cancellation that lands just as its inner future
# completes (fixed in 3.12), so one cancel() is not always enough.
CANCEL_RETRY_S = 0.05


async def async_cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` until it is done, without raising its outcome."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_RETRY_S)
