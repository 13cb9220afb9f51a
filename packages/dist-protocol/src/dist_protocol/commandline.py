"""The command lines of ``dcenter`` and ``dworker``: options declared once, read from the
arguments or their environment variables, with click's conventions for help and usage errors.

Built on ``argparse`` because start-up is part of what a cluster costs: a CLI framework that
imports a validation library to coerce a dozen options cost these programs more CPU than
everything else they import. Every value is converted and checked here, so a bad one is a
usage error (exit status 2) naming the option, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from .defaults import HANDSHAKE_TIMEOUT, MAX_FRAMES_PER_BATCH
from .framing import DEFAULT_LIMITS, UNAUTHENTICATED_LIMITS

TRUE = ("1", "true", "t", "yes", "y", "on")
FALSE = ("0", "false", "f", "no", "n", "off")
HELP_WIDTH = 80  # as click: at most 80 columns, fewer on a narrower terminal
COLUMN = 30  # where descriptions start


class UsageError(Exception):
    """A bad command line; ``CommandLine.run`` prints it with the usage and exits 2."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.message = message
        self.option = option


class Option:
    """One option (``--name VALUE``, or a flag), or with ``positional`` the argument.

    ``kind`` converts the text (int, float, str or bool for flags); ``minimum`` is checked
    after it; ``check`` turns the converted value into the final one or raises ValueError.
    ``negatable`` flags also take ``--no-NAME``. (A plain class: ``dataclasses`` is one of the
    imports a program reading its command line need not pay for yet.)
    """

    def __init__(self, name: str, help: str, kind: type = str, default: Any = None, *,
                 envvar: str | None = None, minimum: float | None = None,
                 check: Callable[[Any], Any] | None = None, negatable: bool = False,
                 positional: bool = False, metavar: str | None = None,
                 show_default: bool = True, required: bool = True):
        self.name, self.help, self.kind, self.default = name, help, kind, default
        self.required = positional and required and default is None
        self.envvar, self.minimum, self.check = envvar, minimum, check
        self.negatable, self.positional, self.metavar = negatable, positional, metavar
        self.show_default = show_default

    def __repr__(self) -> str:
        return f"Option({self.opts[0]!r})"

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def flag(self) -> bool:
        return self.kind is bool

    @property
    def opts(self) -> list[str]:
        if self.positional:
            return [self.metavar or self.name.upper()]
        return [f"--{self.name}", *([f"--no-{self.name}"] if self.negatable else [])]

    def label(self) -> str:
        if self.positional:
            return f"{self.opts[0]} <{self.kind.__name__}>"
        if self.flag:
            return " / ".join(self.opts)
        kind = self.kind.__name__ + (" range" if self.minimum is not None else "")
        return f"--{self.name} <{kind}>"

    def convert(self, text: str) -> Any:
        """The value from its text (command line or environment); ValueError says why not."""
        if self.flag:
            lowered = text.strip().lower()
            if lowered in TRUE or lowered in FALSE:
                return lowered in TRUE
            raise ValueError(f"{text!r} is not a valid boolean.")
        value: Any = text
        if self.kind is int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a valid integer.") from None
        elif self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a valid float.") from None
            if math.isnan(value):
                raise ValueError(f"{text!r} is not a valid float.")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{text} is not in the range x>={self.minimum:g}.")
        return value

    def annotation(self) -> str:
        notes = []
        if self.envvar:
            notes.append(f"env var: {self.envvar}")
        if self.required:
            notes.append("required")
        elif self.show_default and self.default is not None and not (self.flag and
                                                                     not self.negatable):
            shown = (self.name if self.default else f"no-{self.name}") if self.flag else \
                self.default
            notes.append(f"default: {shown}")
        if self.minimum is not None:
            notes.append(f"x>={self.minimum:g}")
        return f"[{'; '.join(notes)}]" if notes else ""


# Who may connect, and over what: the same on every program that listens.
SECURITY_OPTIONS = (
    Option("token-file", "file holding the shared token (or set DIST_TOKEN)",
           envvar="DIST_TOKEN_FILE"),
    Option("no-auth", "allow a non-loopback address without a token (anyone who can connect "
           "runs code)", bool, envvar="DIST_NO_AUTH", default=False),
    Option("tls-cert", "TLS certificate (PEM)", envvar="DIST_TLS_CERT"),
    Option("tls-key", "TLS private key (PEM)", envvar="DIST_TLS_KEY"),
    Option("tls-ca", "CA to verify peers (mutual TLS)", envvar="DIST_TLS_CA"),
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.lower()


LOG_LEVEL_OPTION = Option("log-level", "how much to log on stderr: debug, info, warning, error "
                          "or critical", envvar="DIST_LOG_LEVEL", default="warning",
                          check=_log_level)
# What an authenticated peer may send in one frame and one batch, and how long a new connection
# has to authenticate: the same options, with the same names and environment variables, on every
# program that accepts connections (read by ``framing.Limits.for_options``).
CONNECTION_LIMIT_OPTIONS = (
    Option("max-frames", "most frames in one batch from an authenticated peer", int,
           envvar="DIST_MAX_FRAMES", minimum=MAX_FRAMES_PER_BATCH,
           default=DEFAULT_LIMITS.max_frames),
    Option("max-frame-bytes", "largest frame from an authenticated peer, in bytes (results and "
           "payloads larger than this cannot travel)", int, envvar="DIST_MAX_FRAME_BYTES",
           minimum=UNAUTHENTICATED_LIMITS.max_frame_bytes,
           default=DEFAULT_LIMITS.max_frame_bytes),
    Option("max-batch-bytes", "largest batch from an authenticated peer, in bytes [default: "
           "twice --max-frame-bytes]", int, envvar="DIST_MAX_BATCH_BYTES"),
    Option("handshake-timeout", "seconds a new connection has to authenticate", float,
           envvar="DIST_HANDSHAKE_TIMEOUT", minimum=0.1, default=HANDSHAKE_TIMEOUT),
)


class _Formatter(argparse.HelpFormatter):
    """Of a fixed width: argparse makes one per ``add_argument`` (to check its metavar), and
    one of the terminal's width imports ``shutil`` (and its compression modules) to ask it;
    argparse's help is never shown (``CommandLine.help_text`` writes it)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=HELP_WIDTH)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message[:1].upper() + message[1:] + ".")


class CommandLine:
    """A program's options: ``parse`` gives their values by ``dest``; ``run`` also prints
    help, the version and usage errors the way click does, and exits where they say."""

    def __init__(self, prog: str, help: str, options: Sequence[Option], version: str):
        self.prog, self.help, self.options, self.version = prog, help, list(options), version
        self._parser = _Parser(prog=prog, add_help=False, allow_abbrev=False,
                               formatter_class=_Formatter)
        for option in self.options:
            if option.positional:
                self._parser.add_argument(option.dest, nargs="?", default=None)
            elif option.flag:
                self._parser.add_argument(f"--{option.name}", dest=option.dest,
                                          action="store_const", const=True, default=None)
                if option.negatable:
                    self._parser.add_argument(f"--no-{option.name}", dest=option.dest,
                                              action="store_const", const=False)
            else:
                self._parser.add_argument(f"--{option.name}", dest=option.dest, default=None)
        self._parser.add_argument("--help", action="store_true")
        self._parser.add_argument("--version", action="store_true")

    def usage(self) -> str:
        positional = [f"{{{o.opts[0]}}}" for o in self.options if o.positional]
        return " ".join([f"Usage: {self.prog} [OPTIONS]", *positional])

    def parse(self, argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
        """The options' values; UsageError for a bad one (``help``/``version`` are flags)."""
        given = vars(self._parser.parse_args(list(argv)))
        values: dict[str, Any] = {"help": given.pop("help"), "version": given.pop("version")}
        if values["help"] or values["version"]:
            return values
        for option in self.options:
            raw = given[option.dest]
            where = f"'{option.opts[0]}'"
            if raw is None and option.envvar and environ.get(option.envvar, "") != "":
                raw = environ[option.envvar]
                where = f"'{option.opts[0]}' (env var: '{option.envvar}')"
            if raw is None:
                if option.required:
                    raise UsageError(f"Missing argument '{option.opts[0]}'.")
                values[option.dest] = option.default
                continue
            try:
                value = raw if isinstance(raw, bool) else option.convert(raw)
                values[option.dest] = option.check(value) if option.check else value
            except ValueError as exc:
                raise UsageError(f"Invalid value for {where}: {exc}", option.name) from None
        return values

    def run(self, argv: Sequence[str] | None = None,
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``parse``; help and the version are printed (exit 0), a usage error too (exit 2)."""
        try:
            values = self.parse(sys.argv[1:] if argv is None else argv,
                                os.environ if environ is None else environ)
        except UsageError as exc:
            self.fail(exc.message)
        if values["help"]:
            print(self.help_text(), end="")
            raise SystemExit(0)
        if values["version"]:
            print(f"{self.prog} {self.version}")
            raise SystemExit(0)
        return values

    def fail(self, message: str) -> NoReturn:
        """A usage error, as click prints it; exit status 2."""
        print(f"{self.usage()}\nTry '{self.prog} --help' for help.\n\nError: {message}",
              file=sys.stderr)
        raise SystemExit(2)

    def help_text(self) -> str:
        import shutil
        import textwrap

        width = min(HELP_WIDTH, max(40, shutil.get_terminal_size((HELP_WIDTH, 24)).columns))
        lines = [self.usage(), ""]
        lines += textwrap.wrap(self.help, width - 2, initial_indent="  ",
                               subsequent_indent="  ")
        sections = [("Arguments", [o for o in self.options if o.positional]),
                    ("Options", [o for o in self.options if not o.positional])]
        for title, options in sections:
            rows = [(o.label(), " ".join(filter(None, [o.help, o.annotation()])))
                    for o in options]
            if title == "Options":
                rows += [("--version", "print the version and exit"),
                         ("--help", "Show this message and exit.")]
            if not rows:
                continue
            lines += ["", f"{title}:"]
            for label, text in rows:
                wrapped = textwrap.wrap(text, width - COLUMN - 2) or [""]
                if len(label) + 2 <= COLUMN - 2:
                    lines.append(f"  {label:{COLUMN - 2}}{wrapped[0]}".rstrip())
                else:
                    lines.append(f"  {label}")
                    lines.append(" " * COLUMN + wrapped[0])
                lines += [" " * COLUMN + more for more in wrapped[1:]]
        return "\n".join(lines) + "\n"
