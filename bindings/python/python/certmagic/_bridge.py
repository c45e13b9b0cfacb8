"""Glue between the engine's threads and asyncio (used by the native module)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Awaitable, Optional, Set

_loop: Optional[asyncio.AbstractEventLoop] = None
_blocked: Set[int] = set()
_lock = threading.Lock()


def remember_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The loop the async API was last used from: coroutine callbacks run there."""
    global _loop
    _loop = loop


def blocking_begin() -> None:
    """A blocking call starts on this thread; if it runs a loop, that loop cannot serve callbacks."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        with _lock:
            _blocked.add(id(loop))


def blocking_end() -> None:
    loop = asyncio._get_running_loop()
    if loop is not None:
        with _lock:
            _blocked.discard(id(loop))


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw


def settle(value: Any) -> Any:
    """The result of a callback: awaited if it is awaitable (on the application's loop when it is
    free, else on a loop of this thread's own)."""
    if not inspect.isawaitable(value):
        return value
    loop = _loop
    if loop is not None and loop.is_running() and id(loop) not in _blocked:
        try:
            current: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not loop:
            return asyncio.run_coroutine_threadsafe(_await(value), loop).result()
    return asyncio.run(_await(value))


def resolve(future: "asyncio.Future[Any]", ok: bool, value: Any) -> None:
    """Completes an awaitable of the native module (on its loop's thread)."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
