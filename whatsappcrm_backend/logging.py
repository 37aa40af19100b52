"""One log line per event, each carrying the ids that let a reply be traced end to end.

A reply is traced webhook -> Message row -> ``flows.process_message`` -> outbound row ->
Graph API (sent in the same run, or by ``conversations.send_message``) by grepping one id (``message_id``,
``wamid``, ``contact``, ``task_id``). Two mechanisms put those ids on every line:

- a context variable holding ``key=value`` pairs for the current unit of work.
  Celery's ``task_prerun`` binds ``task_id``/``task`` (see ``connect_task_logging``);
  code binds more with ``log_context(message_id=..., contact=...)``. Context variables
  are per thread and, under the gevent pool, per greenlet, so concurrent tasks in one
  worker never see each other's ids;
- ``event_logger(name)``, whose calls take ids as keyword arguments:
  ``log.info("reply sent", message_id=42, wamid=wamid)``.

``ContextFilter`` copies both onto the record and ``KeyValueFormatter`` appends them as
``key=value`` after the usual line, so the lines stay greppable by humans and parseable
by log shippers. No Django here: Django's LOGGING dict and Celery's own handlers both use
these classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

__all__ = [
    "ContextFilter",
    "EventLogger",
    "KeyValueFormatter",
    "bind_log_context",
    "connect_task_logging",
    "current_log_context",
    "event_logger",
    "format_context",
    "log_context",
    "logging_config",
    "reset_log_context",
]

_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("whatsappcrm_log_context", default=MappingProxyType({}))

# Values longer than this are cut: a log line must stay one readable line.
MAX_VALUE_CHARS = 200


def current_log_context() -> Mapping[str, Any]:
    """The ids bound for the current task/request (read-only)."""
    return _CONTEXT.get()


def bind_log_context(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ids to the current context; pass the token to ``reset_log_context`` to undo."""
    return _CONTEXT.set({**_CONTEXT.get(), **fields})


def reset_log_context(token: Token[Mapping[str, Any]]) -> None:
    _CONTEXT.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """``with log_context(message_id=m.pk, contact=m.contact.wa_id): ...`` - ids on every line inside."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


def _render_value(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    if text == "" or any(ch.isspace() or ch in '="' for ch in text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def format_context(fields: Mapping[str, Any]) -> str:
    """``{"task_id": "ab", "text": "hi there"}`` -> ``task_id=ab text="hi there"`` (None values left out)."""
    return " ".join(f"{key}={_render_value(value)}" for key, value in fields.items() if value is not None)


class ContextFilter(logging.Filter):
    """Attach the bound ids (and an ``event_logger``'s keyword ids) to the record as ``record.context``.

    Put it on the handler, not a logger: handler filters see records from every logger
    that propagates to it, including Celery's and Django's own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _CONTEXT.get()
        own = getattr(record, "event_fields", None) or {}
        existing = getattr(record, "context", None)
        if not isinstance(existing, Mapping):
            existing = {}
        record.context = {**bound, **existing, **own}
        return True


class KeyValueFormatter(logging.Formatter):
    """The usual line, then `` key=value`` for each id on the record.

    ``inner`` lets it wrap a formatter someone else configured (Celery's worker
    formatter) instead of replacing its format.
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: str = "%",
                 validate: bool = True, *, defaults: Mapping[str, Any] | None = None,
                 inner: logging.Formatter | None = None) -> None:
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)  # type: ignore[arg-type]
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record) if self.inner is not None else super().format(record)
        context = getattr(record, "context", None)
        if context is None:  # no ContextFilter on this handler: read the context variable directly
            context = {**_CONTEXT.get(), **(getattr(record, "event_fields", None) or {})}
        suffix = format_context(context)
        if not suffix:
            return line
        # Keep the ids on the event's line, before any traceback.
        head, sep, tail = line.partition("\n")
        return f"{head} {suffix}{sep}{tail}"


class EventLogger(logging.LoggerAdapter):
    """``log.info("message stored", message_id=7, contact="2547...")``: keyword ids become context."""

    _LOGGING_KWARGS = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {key: kwargs.pop(key) for key in list(kwargs) if key not in self._LOGGING_KWARGS}
        extra = dict(kwargs.get("extra") or {})
        extra["event_fields"] = {**(self.extra or {}), **extra.get("event_fields", {}), **fields}
        kwargs["extra"] = extra
        return msg, kwargs


def event_logger(name: str, **static_fields: Any) -> EventLogger:
    """A logger whose calls accept ids as keyword arguments (``static_fields`` go on every line)."""
    return EventLogger(logging.getLogger(name), static_fields)


LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """Django's ``LOGGING``: one console handler whose lines end with the bound ids.

    ``settings.LOGGING = logging_config(env_str("LOG_LEVEL", "INFO"))``. Celery workers
    keep their own handlers; ``connect_task_logging`` adds the ids to those.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"line": {"()": f"{__name__}.KeyValueFormatter", "fmt": LINE_FORMAT}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


# --- Celery ----------------------------------------------------------------------------

_TASK_TOKENS: dict[str, Token[Mapping[str, Any]]] = {}


def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    _TASK_TOKENS[task_id] = bind_log_context(task_id=task_id, task=getattr(task, "name", None))


def _unbind_task(task_id: str | None = None, **_: Any) -> None:
    token = _TASK_TOKENS.pop(task_id, None) if task_id is not None else None
    if token is None:
        return
    try:
        reset_log_context(token)
    except ValueError:  # bound in another context (should not happen): just clear the task ids
        _CONTEXT.set({k: v for k, v in _CONTEXT.get().items() if k not in ("task_id", "task")})


def _decorate_handlers(logger: logging.Logger | None = None, **_: Any) -> None:
    """After Celery configured a logger, make each of its handlers append the ids."""
    if logger is None:
        return
    for handler in logger.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if not isinstance(handler.formatter, KeyValueFormatter):
            handler.setFormatter(KeyValueFormatter(inner=handler.formatter or logging.Formatter()))


def connect_task_logging() -> None:
    """Bind ``task_id``/``task`` for every task run and add the ids to Celery's worker log lines.

    Call it once per process before the worker sets up logging (``ProjectConfig.ready`` is
    early enough: Celery imports Django before it configures logging). Idempotent.
    """
    from celery import signals

    signals.task_prerun.connect(_bind_task, dispatch_uid="whatsappcrm.logging.bind_task", weak=False)
    signals.task_postrun.connect(_unbind_task, dispatch_uid="whatsappcrm.logging.unbind_task", weak=False)
    signals.after_setup_logger.connect(_decorate_handlers, dispatch_uid="whatsappcrm.logging.root", weak=False)
    signals.after_setup_task_logger.connect(_decorate_handlers, dispatch_uid="whatsappcrm.logging.task",
                                            weak=False)
