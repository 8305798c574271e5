"""Logging for every wio process: plain or JSON lines on stderr, and a buffered handler for the access log."""
from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["configure_logging", "flush_logs", "BufferedLogHandler"]


class _Formatter(logging.Formatter):
    """logging's Formatter, with the date and time of the default format made once per second: every
    access-log line has one, and localtime() + strftime() were a good part of writing it."""
    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs)


class _JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        fields = getattr(record, "wio_fields", None)  # structured records (the wio.access log)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class BufferedLogHandler(logging.StreamHandler):
    """Lines gathered and written together: when ``max_bytes`` are waiting, when a line is older than
    ``max_delay`` seconds at the next record, and whenever ``flush()`` is called (a timer in the
    server does every ``max_delay``; logging.shutdown at exit). For the access log: one line per
    request, and one write per line was a system call per request (nginx's ``access_log ... buffer=``)."""

    def __init__(self, stream=None, *, max_bytes: int = 64 << 10, max_delay: float = 0.5):
        super().__init__(stream)
        self.max_bytes, self.max_delay = max_bytes, max_delay
        self._lines: list[str] = []
        self._size = 0
        self._since = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - as logging.StreamHandler: report, never raise
            self.handleError(record)
            return
        if not self._lines:
            self._since = time.monotonic()
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.max_bytes or time.monotonic() - self._since >= self.max_delay:
            self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._lines:
                lines, self._lines, self._size = self._lines, [], 0
                try:
                    self.stream.write("".join(lines))
                except Exception:  # noqa: BLE001 - a broken stream must not break requests
                    pass
            super().flush()
        finally:
            self.release()


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    # The access log is on the hot path: skip per-record thread/process lookups nobody reads.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    formatter = _JsonFormatter() if json_lines else _Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger("wio.access")
    buffered = BufferedLogHandler(sys.stderr)
    buffered.setFormatter(formatter)
    access.handlers[:] = [buffered]
    access.propagate = False


def flush_logs() -> None:
    for handler in logging.getLogger("wio.access").handlers:
        handler.flush()
