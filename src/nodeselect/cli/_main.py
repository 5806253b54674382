"""Entry point: build the argument parser from each subcommand module and dispatch.

Whatever happens, the user sees at most one line on stderr and a documented exit code
(``EXIT_CODES_HELP``): usage errors are one line (not argparse's usage block), a closed pipe
exits quietly, a full disk or any other output error is one line (exit 5), Ctrl-C is one
line (exit 130), and an unexpected exception is one line naming it (exit 70), never a
traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TextIO

from nodeselect.cli import sim
from nodeselect.cli._common import (
    EXIT_CODES_HELP,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    QUIET,
    add_verbosity_arguments,
    fail,
    terminal_safe,
    warn,
)
from nodeselect.cli._parsers import (
    register_gpus,
    register_nodes,
    register_place,
    register_plan,
    register_schema,
    register_survey,
)
from nodeselect.errors import NodeSelectError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

# Each adds its parser to ``subparsers`` and sets a ``handler`` default that imports the
# command's module only when it runs (so --help and usage errors import none of them).
_SUBCOMMANDS = (
    register_plan,
    register_place,
    register_nodes,
    register_gpus,
    sim.register,
    register_survey,
    register_schema,
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - slow import

    try:
        return version("nodeselect")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"nodeselect {_version()}")
        parser.exit()


class _UsageError(SystemExit):
    """argparse refused the command line: exit 2 (argparse's contract), message one line."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the command and ``--help``."""

    def error(self, message: str) -> NoReturn:
        first = message.splitlines()[0] if message else "invalid usage"
        raise _UsageError(f"{first} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The full parser (also used by the docs test that checks every flag is documented)."""
    parser = _Parser(
        prog="nodeselect",
        description="Decide where compute jobs should run on a decentralized GPU network.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    add_verbosity_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for register in _SUBCOMMANDS:
        register(subparsers)
    for name, sub in subparsers.choices.items():
        add_verbosity_arguments(sub)
        if name == "sim":
            for action in sub._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for nested in action.choices.values():
                        add_verbosity_arguments(nested)
    return parser


class _OneLineHandler(logging.Handler):
    """``nodeselect: <level>: <message>`` on stderr, terminal-safe, never a traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = terminal_safe(record.getMessage())
            print(f"nodeselect: {record.levelname.lower()}: {text}", file=sys.stderr)
        except Exception:
            return


def _configure_logging(verbose: int, quiet: bool) -> logging.Handler:
    logger = logging.getLogger("nodeselect")
    handler = _OneLineHandler()
    level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.level or logging.WARNING))
    return handler


def _show_warning(  # noqa: PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A Python warning as one line without the source path (e.g. numpy's RuntimeWarning)."""
    warn(f"{category.__name__}: {message}")


@contextmanager
def _cli_environment(verbose: int, quiet: bool) -> Iterator[None]:
    handler = _configure_logging(verbose, quiet)
    QUIET[0] = quiet
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            # A job limit beyond float32 (min_free_gb = 1e308) becomes inf when compiled, which
            # is its meaning (nothing is that large); numpy's overflow note is noise to a user.
            warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
            yield
    finally:
        warnings.showwarning = previous
        QUIET[0] = False
        logging.getLogger("nodeselect").removeHandler(handler)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in tests)
        return


def _flush_stdout() -> None:
    stream: Any = sys.stdout
    if stream is not None:
        stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (documented in ``nodeselect --help``)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return fail(str(exc), EXIT_INPUT)
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    verbose = int(getattr(args, "verbose", 0) or 0)
    quiet = bool(getattr(args, "quiet", False))
    with _cli_environment(verbose, quiet):
        try:
            code = handler(args)
            _flush_stdout()
        except KeyboardInterrupt:
            return fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:  # `nodeselect ... | head`: the reader left; that is not an error
            _quiet_stdout()
            return EXIT_OK
        except _UsageError as exc:  # a nested parser (e.g. `sim serve`) refused its arguments
            return fail(str(exc), EXIT_INPUT)
        except NodeSelectError as exc:  # a last net: handlers map their own errors to exit codes
            return fail(str(exc), EXIT_INPUT)
        except OSError as exc:  # writing the output failed: a full disk, a closed terminal...
            _quiet_stdout()
            if exc.errno == errno.EPIPE:
                return EXIT_OK
            reason = exc.strerror or type(exc).__name__
            return fail(f"cannot write the output (I/O error): {reason}", EXIT_OUTPUT)
        except MemoryError:
            return fail("out of memory (try a smaller fleet or more filters)", EXIT_INTERNAL)
        except RecursionError:
            return fail("input nested too deeply to process", EXIT_INPUT)
        except Exception as exc:
            return fail(
                f"internal error: {type(exc).__name__}: {exc} (this is a bug in nodeselect; "
                "please report this line and the command)",
                EXIT_INTERNAL,
            )
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
