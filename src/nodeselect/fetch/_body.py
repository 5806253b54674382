"""Reading a response body under a cap, decompressing it here.

httpx would decompress a whole ``Content-Encoding: gzip`` body for us, but without a bound:
a 2 MB gzip bomb inflates to gigabytes before anyone can count. So the client asks only for
``gzip`` or ``deflate`` (``Accept-Encoding``), reads the *raw* bytes, and inflates them here with
zlib's ``max_length``: never more than the cap (plus one byte, to know it was passed) is ever
produced, whatever the ratio. ``Content-Length`` above the cap is refused before any read.
"""

from __future__ import annotations

import time
import zlib
from typing import Final

from nodeselect.errors import InvalidResponseError, ProtocolViolationError, ResponseTooLargeError

__all__ = ["ACCEPT_ENCODING", "BodyReader"]

#: What the client accepts: encodings it can inflate under a cap.
ACCEPT_ENCODING: Final = "gzip, deflate"


class BodyReader:
    """Collects one body's bytes (decompressed) and refuses more than ``cap`` of them.

    ``feed`` each raw chunk as it arrives, then ``finish``. With ``truncate`` (error bodies,
    read only for their message) bytes past the cap are dropped instead of refused.
    ``deadline`` (``time.monotonic()``) is checked after every chunk: a server trickling one
    byte at a time cannot keep a request alive past it.
    """

    def __init__(
        self,
        encoding: str | None,
        length: str | None,
        *,
        cap: int,
        url: str,
        deadline: float | None = None,
        truncate: bool = False,
    ) -> None:
        self._cap = cap
        self._url = url
        self._deadline = deadline
        self._truncate = truncate
        self._buf = bytearray()
        self._full = False
        self.raw_bytes = 0
        enc = (encoding or "identity").strip().lower()
        self._raw_deflate = False
        if enc in ("", "identity"):
            self._z: zlib._Decompress | None = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
            self._raw_deflate = True  # may be raw deflate without the zlib header (tried once)
        else:
            raise ProtocolViolationError(
                f"GET {url}: the response's Content-Encoding {encoding!r} is not supported; "
                f"expected one of {ACCEPT_ENCODING} (as the request's Accept-Encoding said)",
                limit="content-encoding",
            )
        if length is not None and enc in ("", "identity") and not truncate:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > cap:
                raise self._too_large(f"declares Content-Length {declared}")

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"GET {self._url}: the response body {what}, more than max_body_bytes={self._cap}; "
            "reading stopped there (a page of 50 nodes is a few hundred KB: raise "
            "max_body_bytes only for a server known to send bigger pages)",
            limit="max_body_bytes",
        )

    @property
    def full(self) -> bool:
        """Whether a truncating reader has all it will keep (the caller may stop reading)."""
        return self._full

    def feed(self, chunk: bytes) -> None:
        """Take one raw chunk.

        Raises:
            ResponseTooLargeError: the body passed the cap (not with ``truncate``).
            InvalidResponseError: the compressed data is corrupt.
            TimeoutError: the deadline passed.
        """
        self.raw_bytes += len(chunk)
        if self._z is None:
            self._add(chunk)
        else:
            data = chunk
            while data and not self._full:
                room = self._cap + 1 - len(self._buf)
                try:
                    out = self._z.decompress(data, room)
                except zlib.error as exc:
                    if self._raw_deflate and not self._buf and self.raw_bytes == len(chunk):
                        self._raw_deflate = False
                        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                        continue
                    raise InvalidResponseError(
                        f"GET {self._url}: the compressed response body is corrupt ({exc})"
                    ) from None
                self._raw_deflate = False
                self._add(out)
                data = self._z.unconsumed_tail
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TimeoutError

    def _add(self, data: bytes) -> None:
        if not data:
            return
        if len(self._buf) + len(data) > self._cap:
            if not self._truncate:
                raise self._too_large(f"passed {self._cap} bytes")
            data = data[: self._cap - len(self._buf)]
            self._full = True
        self._buf += data

    def finish(self) -> bytes:
        """The whole body (decompressed)."""
        if self._z is not None and not self._full:
            try:
                self._add(self._z.flush())
            except zlib.error as exc:  # pragma: no cover - flush of a consumed stream
                raise InvalidResponseError(
                    f"GET {self._url}: the compressed response body is corrupt ({exc})"
                ) from None
        return bytes(self._buf)
