"""The Jinja environment of the shipped templates (StrictUndefined: a typo is an error)."""

from __future__ import annotations

import contextlib
import re
import signal
import string
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import do_format
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = Environment(
    loader=PackageLoader("runner.reports", "templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html", "html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(template: str, context: dict[str, Any]) -> str:
    """Render a shipped template with ``context``."""
    return _ENV.get_template(template).render(**context)


class UserTemplateError(Exception):
    """A user's template failed: where, and why, in one line."""


# Bounds on a user's template, which is untrusted input like a spec: the sandbox stops
# escapes, these stop exhaustion. One format field may pad or print at most FORMAT_WIDTH
# characters ('{0:>1000000000}' would take gigabytes in one C call, which no timer can
# interrupt); a repeated string or list at most MAX_REPEAT items; a power at most
# MAX_EXPONENT; and the whole output at most MAX_OUTPUT characters.
TEMPLATE_SECONDS = 10.0
FORMAT_WIDTH = 10_000
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 10_000
MAX_OUTPUT = 64 * 1024 * 1024
MEMORY_BYTES = 2 * 1024**3
_PRINTF = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_SPEC_NUMBERS = re.compile(r"\d+")


class _Exhausting(Exception):
    """The template asked for more than the bounds allow."""


class _TimedOut(BaseException):
    """Raised by the timer inside a render that runs too long (BaseException, so the
    template's own code cannot swallow it)."""


def _check_printf(text: str) -> None:
    for found in _PRINTF.finditer(text):
        for number in found.groups():
            if number == "*":
                raise _Exhausting("a '*' width or precision in a % format")
            if number and int(number) > FORMAT_WIDTH:
                raise _Exhausting(f"a % format width or precision above {FORMAT_WIDTH:,}")


def _check_format_spec(text: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec:
            raise _Exhausting("a nested {…} in a format spec")
        if any(int(n) > FORMAT_WIDTH for n in _SPEC_NUMBERS.findall(spec)):
            raise _Exhausting(f"a format width or precision above {FORMAT_WIDTH:,}")


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    """The ``format`` filter, with its widths bounded."""
    _check_printf(str(value))
    return str(do_format(value, *args, **kwargs))


def _bounded(name: str, original: Any, position: int) -> Any:
    """A filter whose numeric argument at ``position`` (a width or a count) is bounded."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = [*args[position : position + 1], *kwargs.values()]
        if any(isinstance(v, int) and v > FORMAT_WIDTH for v in values):
            raise _Exhausting(f"the {name} filter with a size above {FORMAT_WIDTH:,}")
        return original(*args, **kwargs)

    return bounded


@contextlib.contextmanager
def _memory_limit(extra: int) -> Iterator[None]:
    """Cap this process's address space at what it uses now plus ``extra`` bytes, so a
    template that doubles a string forty times meets MemoryError instead of the OOM killer."""
    try:
        import resource

        with open("/proc/self/status", encoding="ascii") as status:
            used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, StopIteration, ValueError):
        yield
        return
    cap = used + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, read-only (a template cannot change the data it is given, so
    ``job.update()`` fails), with ``%``, ``*`` and ``**`` and ``str.format`` bounded."""

    intercepted_binops = frozenset(["%", "*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            _check_printf(left)
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                repeated = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                if repeated and len(seq) * times > MAX_REPEAT:
                    raise _Exhausting(f"a repetition of more than {MAX_REPEAT:,} items")
        elif operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise _Exhausting(f"an exponent above {MAX_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format_spec(text)
            return str(wrapped(*args, **kwargs))

        return checked


def _template_line(exc: BaseException) -> int | None:
    """The line of the user's template an error was raised at (Jinja maps its frames)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _where(path: Path, exc: BaseException) -> str:
    line = _template_line(exc)
    return f"{path}:{line}" if line else str(path)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TimedOut in this thread after ``seconds`` (SIGALRM; the main thread only)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(signum: int, frame: FrameType | None) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_user_template(
    path: Path, context: dict[str, Any], *, timeout: float = TEMPLATE_SECONDS
) -> str:
    """Render a user's template in the sandbox, with the same context as the shipped ones.

    The sandbox refuses access to Python internals (``__class__``, ``__mro__``,
    ``__globals__`` …) and changes to the context; an undefined variable is an error, not
    an empty string. A render is bounded in time (``timeout`` seconds), output size and
    the size of what one expression may build; every failure inside the template is
    reported as the template's, with its line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserTemplateError(f"{path}: cannot read the template: {exc}") from exc
    environment = _BoundedSandbox(
        undefined=StrictUndefined,
        autoescape=path.name.endswith((".html", ".htm", ".html.j2", ".htm.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.globals.pop("lipsum", None)  # a text generator a template never needs
    environment.filters["format"] = _bounded_format
    for name, position in (("center", 1), ("indent", 1), ("slice", 1), ("batch", 1)):
        environment.filters[name] = _bounded(name, environment.filters[name], position)
    try:
        template = environment.from_string(text)
    except TemplateSyntaxError as exc:
        raise UserTemplateError(
            f"{path}:{exc.lineno}: template syntax error: {exc.message}"
        ) from exc
    parts: list[str] = []
    size = 0
    try:
        with _time_limit(timeout), _memory_limit(MEMORY_BYTES):
            for part in template.generate(**context):
                size += len(part)
                if size > MAX_OUTPUT:
                    raise _Exhausting(f"output above {MAX_OUTPUT:,} characters")
                parts.append(part)
    except _TimedOut:
        raise UserTemplateError(
            f"{path}: the template ran for over {timeout:g} s and was stopped "
            "(--template-timeout SECONDS allows more)"
        ) from None
    except SecurityError as exc:
        raise UserTemplateError(
            f"{_where(path, exc)}: refused by the template sandbox: {exc}"
        ) from exc
    except UndefinedError as exc:
        raise UserTemplateError(
            f"{_where(path, exc)}: {exc.message} (the README lists the variables a template gets)"
        ) from exc
    except (Exception, RecursionError, MemoryError) as exc:
        where = _where(path, exc)
        kind = "" if isinstance(exc, (_Exhausting, TemplateError)) else f"{type(exc).__name__}: "
        said = str(exc) or (
            f"it needed more than the {MEMORY_BYTES // 1024**3} GiB a template may use"
            if isinstance(exc, MemoryError)
            else "no message"
        )
        raise UserTemplateError(f"{where}: template error: {kind}{said}") from exc
    return "".join(parts)
