"""A wall-clock bound on every request of the sync client, and a way to stop them all.

httpx's timeouts are per operation: a server that trickles one byte a second never trips a
read timeout of five. The sync client therefore registers each request here with its own
deadline (``min(now + request_timeout, fetch deadline)``); one watchdog thread shuts the
request's socket down when that deadline passes, which makes the blocked read return at once.
:meth:`Watchdog.abort_all` does the same for every request in flight (Ctrl-C, a failed
fetch). The socket is learnt from httpcore's ``trace`` extension when its connection is made
(each of our ``httpx.Client`` s holds one connection).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

__all__ = ["Slot", "Watchdog"]


class Slot:
    """One connection: its socket (once known) and the deadline of the request on it."""

    __slots__ = ("deadline", "expired", "sock")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.deadline: float | None = None
        self.expired = False

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remember the socket of a new connection."""
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            if stream is not None:
                sock = stream.get_extra_info("socket")
                if isinstance(sock, socket.socket):
                    self.sock = sock
                    if self.expired:  # the deadline passed while connecting
                        self.kill()

    def kill(self) -> None:
        """Stop the request on this connection now (its read returns; the connection is
        dropped by httpx)."""
        self.expired = True
        sock = self.sock
        if sock is not None:
            # The plain socket method even for an SSLSocket: its own shutdown() resets the TLS
            # object under the feet of the thread reading it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Kills requests past their deadline; one daemon thread per client, started lazily."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._slots: set[Slot] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, slot: Slot, deadline: float) -> None:
        """Bound the request about to start on ``slot`` by ``deadline``."""
        with self._cond:
            slot.deadline = deadline
            slot.expired = False
            self._slots.add(slot)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._loop, name="nodeselect-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def unwatch(self, slot: Slot) -> None:
        """The request on ``slot`` is over."""
        with self._cond:
            self._slots.discard(slot)
            slot.deadline = None

    def abort_all(self) -> None:
        """Stop every request in flight now."""
        with self._cond:
            for slot in self._slots:
                slot.kill()

    def close(self) -> None:
        """Stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=1.0)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                nearest: float | None = None
                for slot in self._slots:
                    if slot.expired or slot.deadline is None:
                        continue
                    if slot.deadline <= now:
                        slot.kill()
                    elif nearest is None or slot.deadline < nearest:
                        nearest = slot.deadline
                self._cond.wait(None if nearest is None else nearest - now)
