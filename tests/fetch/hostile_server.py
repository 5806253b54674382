"""A loopback HTTP server that misbehaves on purpose, one behaviour per ``mode``.

Plain sockets (no framework), so it can do what no well-behaved server library would: send
a body that never ends, a gzip bomb, 10,000 nodes on a 50-node page, a total of 10**12, one
byte at a time, JSON nested 1,000 deep, invalid UTF-8, or nothing at all. It answers the probe
and pages of a small honest fleet otherwise (enough for a fetch to get to the bad part).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

MODES = (
    "honest",
    "honest_gzip",
    "honest_deflate",
    "honest_raw_deflate",
    "corrupt_gzip",
    "huge",
    "huge_declared",
    "gzip_bomb",
    "many_items",
    "huge_total",
    "trickle",
    "trickle_headers",
    "silent",
    "hang_after_probe",
    "deep",
    "bad_utf8",
    "ignore_paging",
)


def _node(i: int) -> dict[str, object]:
    created = f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"
    return {"uuid": f"node-{i:05d}", "name": f"n{i}", "created_at": created}


def _instant(text: str, *, end: bool = False) -> datetime:
    if len(text) == 10:  # a date: the whole day
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return day + timedelta(days=1, microseconds=-1) if end else day
    return datetime.fromisoformat(text)


def _bomb(decompressed: int) -> bytes:
    """A gzip body inflating to ``decompressed`` bytes of a page that never closes."""
    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [z.compress(b'{"data": [')]
    block = b" " * (1 << 20)
    parts.extend(z.compress(block) for _ in range(decompressed >> 20))
    parts.append(z.flush())
    return b"".join(parts)


class HostileServer:
    """``with HostileServer(mode) as srv: srv.url``; ``srv.requests`` counts requests,
    ``srv.sent`` body bytes written."""

    def __init__(self, mode: str, *, nodes: int = 120, bomb_mb: int = 200) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.nodes = [_node(i) for i in range(nodes)]
        self.requests = 0
        self.sent = 0
        self._bomb = _bomb(bomb_mb << 20) if mode == "gzip_bomb" else b""
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        #: Set once a request is being held without an answer.
        self.hung = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                    self.requests += 1
                    try:
                        keep = self._answer(conn, dict(parse_qsl(urlsplit(target).query)))
                    except OSError:
                        return
                    if not keep:
                        return

    # -- answers ------------------------------------------------------------------------

    def _send(self, conn: socket.socket, body: bytes, *, headers: str = "") -> bool:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n"
        ).encode()
        conn.sendall(head + body)
        self.sent += len(body)
        return True

    def _page(self, q: dict[str, str], *, total: int | None = None) -> dict[str, object]:
        limit, page = int(q.get("limit", 50)), int(q.get("page", 1))
        sel = list(self.nodes)
        if "filter[created_at]" in q:
            a, b = (
                _instant(x, end=j == 1) for j, x in enumerate(q["filter[created_at]"].split(","))
            )
            sel = [n for n in sel if a <= _instant(str(n["created_at"])) <= b]
        if "filter[uuid]" in q:
            sel = [n for n in sel if n["uuid"] == q["filter[uuid]"]]
        if q.get("sort", "").startswith("-"):
            sel.reverse()
        data = sel[(page - 1) * limit : page * limit]
        total = len(sel) if total is None else total
        return {"data": data, "limit": limit, "page": page, "total": total}

    def _sleep_forever(self) -> bool:
        self.hung.set()
        while not self._stop.wait(0.1):
            pass
        return False

    def _answer(self, conn: socket.socket, q: dict[str, str]) -> bool:
        mode = self.mode
        probe = q.get("sort") == "-created_at"
        if mode == "honest" or (mode == "hang_after_probe" and probe):
            return self._send(conn, json.dumps(self._page(q)).encode())
        if mode.startswith("honest_"):
            body = json.dumps(self._page(q)).encode()
            wbits = {"honest_gzip": 16 | 15, "honest_deflate": 15, "honest_raw_deflate": -15}[mode]
            z = zlib.compressobj(6, zlib.DEFLATED, wbits)
            packed = z.compress(body) + z.flush()
            name = "gzip" if mode == "honest_gzip" else "deflate"
            return self._send(conn, packed, headers=f"Content-Encoding: {name}\r\n")
        if mode in ("silent", "hang_after_probe"):
            return self._sleep_forever()
        if mode == "huge":  # a body that never ends, no length
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            conn.sendall(b'{"data": [')
            block = (json.dumps(self.nodes[0]) + ",").encode() * 500
            while not self._stop.is_set():
                conn.sendall(block)
                self.sent += len(block)
            return False
        if mode == "huge_declared":
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n{"data": [')
            return self._sleep_forever()
        if mode == "corrupt_gzip":
            packed = bytearray(zlib.compress(json.dumps(self._page(q)).encode(), wbits=31))
            packed[20:40] = b"\x00" * 20
            return self._send(conn, bytes(packed), headers="Content-Encoding: gzip\r\n")
        if mode == "gzip_bomb":
            return self._send(conn, self._bomb, headers="Content-Encoding: gzip\r\n")
        if mode == "many_items":
            page = self._page(q)
            page["data"] = [_node(i) for i in range(10_000)]
            page["total"] = 10_000
            return self._send(conn, json.dumps(page).encode())
        if mode == "huge_total":
            return self._send(conn, json.dumps(self._page(q, total=10**12)).encode())
        if mode == "ignore_paging":  # page 1 whatever is asked, the true total
            return self._send(conn, json.dumps(self._page({**q, "page": "1"})).encode())
        if mode == "deep":
            page = self._page(q)
            page["data"] = [*page["data"][:2], "DEEP"]  # type: ignore[index]
            body = json.dumps(page).encode().replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000)
            return self._send(conn, body)
        if mode == "bad_utf8":
            page = self._page(q)
            body = json.dumps(page).encode()
            # node-00001's name, wherever it is on the page (its name is unique: "n1")
            return self._send(conn, body.replace(b'"name": "n1"', b'"name": "bad \xff\xfe"'))
        if mode in ("trickle", "trickle_headers"):
            body = json.dumps(self._page(q)).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            if mode == "trickle":
                conn.sendall(head)
                data = body
            else:
                data = head + body
            for b in _bytes(data):
                if self._stop.is_set():
                    return False
                conn.sendall(b)
                time.sleep(0.05)
            return True
        raise AssertionError(mode)  # pragma: no cover


def _bytes(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]
