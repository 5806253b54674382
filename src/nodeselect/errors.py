"""The one exception hierarchy of nodeselect.

```
NodeSelectError
├── InputError (ValueError)              bad input from the caller; nothing was attempted
│   ├── QueryError                       an invalid node query (enum value, limit, date range)
│   ├── JobSpecError                     an invalid job file or dict (file, line, key)
│   │   └── JobGPUNameError              ... because a GPU model name is unknown or ambiguous
│   └── GPUNameError                     a GPU model name in a job that is unknown or ambiguous
│       └── JobGPUNameError              (also a JobSpecError: catchable as either)
├── DocumentError (ValueError)           a node document or page that does not parse (JSON path)
├── SnapshotError                        a snapshot file that cannot be read or written (file, line)
└── APIError                             talking to the List Nodes API failed
    ├── TransportError                   connection refused/reset, timeout, dropped keep-alive
    ├── InvalidResponseError             a body that is not the documented JSON (truncated)
    │   └── ProtocolViolationError       past a safety limit (size, items, depth): not retried
    │       └── ResponseTooLargeError    a body larger than max_body_bytes (decompressed)
    ├── APIStatusError                   the server answered with an error status
    │   ├── BadRequestError              400 / 422
    │   ├── AuthenticationError          401
    │   ├── PermissionDeniedError        403
    │   ├── NotFoundError                404
    │   ├── RateLimitError               429
    │   └── ServerError                  5xx
    ├── RetriesExhaustedError            every attempt failed, or the deadline passed
    │   └── DeadlineExceededError        the fetch's deadline (RetryPolicy.deadline) passed
    └── IncompleteFetchError             a fetch that could not prove it got every matching node
```

Messages say what was wrong, where, and what would be accepted. They never contain an API key.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "DeadlineExceededError",
    "DocumentError",
    "GPUNameError",
    "IncompleteFetchError",
    "InputError",
    "InvalidResponseError",
    "JobGPUNameError",
    "JobSpecError",
    "NodeSelectError",
    "NotFoundError",
    "OptionalDependencyError",
    "PermissionDeniedError",
    "ProtocolViolationError",
    "QueryError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RetriesExhaustedError",
    "ServerError",
    "SnapshotError",
    "TransportError",
]


class NodeSelectError(Exception):
    """Root of every exception nodeselect raises on purpose."""


class InputError(NodeSelectError, ValueError):
    """The caller's input is invalid; nothing was attempted."""


class OptionalDependencyError(NodeSelectError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra
    to install (``pip install 'nodeselect[arrow]'``, ``[optimal]``, ``[dask]``)."""


class QueryError(InputError):
    """A node query is invalid (bad enum value, limit outside 1..50, inverted date range, ...)."""


class JobSpecError(InputError):
    """A job specification is invalid.

    Attributes:
        source: the file (or ``"<dict>"``) the job came from.
        key: the dotted key at fault, e.g. ``"gpu.min_vram_free_gb"``, or ``None``.
        line: the 1-based line in ``source``, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<dict>",
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.key = key
        self.line = line
        where = source if line is None else f"{source}:{line}"
        if key is not None:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {message}")


class GPUNameError(InputError):
    """A GPU model name is unknown or ambiguous.

    Attributes:
        name: the name as given.
        suggestions: canonical names that the caller may have meant (best first).
    """

    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = suggestions
        super().__init__(message)


class JobGPUNameError(JobSpecError, GPUNameError):
    """A job names a GPU model that is unknown or ambiguous: both a JobSpecError (with the
    file, line and key) and a GPUNameError (with the name and did-you-mean suggestions)."""

    def __init__(
        self,
        message: str,
        *,
        name: str,
        suggestions: tuple[str, ...] = (),
        source: str = "<dict>",
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.name = name
        self.suggestions = suggestions
        self.source = source
        self.key = key
        self.line = line
        where = source if line is None else f"{source}:{line}"
        if key is not None:
            where = f"{where}: {key}"
        InputError.__init__(self, f"{where}: {message}")


class DocumentError(NodeSelectError, ValueError):
    """A node document (or page envelope) does not parse.

    Attributes:
        path: the JSON path of the fault, e.g. ``"data[17].gpus[0].vram_gb_available"``.
        reason: what was wrong there, e.g. ``'expected a number, got "abc"'``.
        errors: every fault found in the same document, in document order, each a
            ``DocumentError`` with its own path and reason; ``(self,)`` when there is one.
            ``path``/``reason`` are those of the first.
    """

    def __init__(self, path: str, reason: str, *, errors: tuple[DocumentError, ...] = ()) -> None:
        self.path = path
        self.reason = reason
        self.errors: tuple[DocumentError, ...] = errors or (self,)
        message = f"{path}: {reason}" if path else reason
        if len(errors) > 1:
            more = "; ".join(str(e) for e in errors[1:4])
            etc = "; ..." if len(errors) > 4 else ""
            message = f"{message} (and {len(errors) - 1} more: {more}{etc})"
        super().__init__(message)


class SnapshotError(NodeSelectError):
    """A snapshot file cannot be read or written (the message names the file and line)."""


class APIError(NodeSelectError):
    """Talking to the List Nodes API failed."""


class TransportError(APIError):
    """The request did not get an HTTP answer: connection error, timeout, dropped connection."""


class InvalidResponseError(APIError):
    """The server answered 2xx with a body that is not the documented JSON page."""


class ProtocolViolationError(InvalidResponseError):
    """A response broke the protocol or a safety limit: more items than the page's ``limit``,
    JSON nested too deep, an unsupported ``Content-Encoding``. Not retried: the same server
    would answer the same way.

    Attributes:
        limit: the name of the limit or rule broken, e.g. ``"limit"``, ``"max_body_bytes"``.
    """

    def __init__(self, message: str, *, limit: str) -> None:
        self.limit = limit
        super().__init__(message)


class ResponseTooLargeError(ProtocolViolationError):
    """A response body (after decompression) was larger than the client's ``max_body_bytes``;
    reading stopped at the cap."""


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        server_message: the server's own error message, when its body had one.
        url: the request URL without credentials.
    """

    def __init__(self, status_code: int, server_message: str | None, url: str) -> None:
        self.status_code = status_code
        self.server_message = server_message
        self.url = url
        detail = f": {server_message}" if server_message else ""
        super().__init__(f"HTTP {status_code} from {url}{detail}")


class BadRequestError(APIStatusError):
    """400 or 422: the server rejected the query."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong (set NODESELECT_API_KEY or pass api_key=)."""


class PermissionDeniedError(APIStatusError):
    """403: the API key is not allowed to list nodes."""


class NotFoundError(APIStatusError):
    """404: the URL is not a List Nodes endpoint (check the base URL)."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class ServerError(APIStatusError):
    """5xx: the server failed."""


class RetriesExhaustedError(APIError):
    """Every attempt at one request failed, or the overall deadline passed.

    Attributes:
        attempts: how many requests were made.
        last_error: the error of the last attempt.
    """

    def __init__(self, message: str, *, attempts: int, last_error: BaseException | None) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(message)


class DeadlineExceededError(RetriesExhaustedError):
    """The whole fetch's deadline (``RetryPolicy.deadline``) passed; requests in flight were
    stopped."""


class IncompleteFetchError(APIError):
    """A fetch could not prove it returned every matching node exactly once (strict mode)."""
