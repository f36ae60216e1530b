"""Logging to the journal: systemd's JournalHandler where systemd-python is installed, otherwise stderr
lines with ``<N>`` priority prefixes (journald reads them). Secrets are masked on every record."""

from __future__ import annotations

import logging
import os
import sys

from mpqr_kiosk.redact import redact

PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class Redactor(logging.Filter):
    """Masks every secret in a record's final message (rule 8)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


class RedactingFormatter(logging.Formatter):
    """Masks the secrets in the whole formatted text, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class PriorityFormatter(RedactingFormatter):
    """``<6>mpqr_kiosk.shell: message``: the prefix gives journald the syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{PRIORITIES.get(record.levelno, 6)}>{super().format(record)}"


REDACTOR = Redactor()


def setup(level: int = logging.INFO, journal: bool = True, stream=None) -> logging.Handler:
    """Route the root logger to the journal when systemd started us, else to ``stream`` (stderr) with
    ``<N>`` prefixes when ``journal``, or plain timestamps when not; return the handler installed."""
    handler: logging.Handler
    if journal and stream is None and os.environ.get("INVOCATION_ID"):  # started by systemd
        try:
            from systemd.journal import JournalHandler

            handler = JournalHandler(SYSLOG_IDENTIFIER="mpqr-kiosk")
            handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
        except ImportError:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(PriorityFormatter("%(name)s: %(message)s"))
    elif journal:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(PriorityFormatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    for old in list(root.handlers):  # python-escpos 3.1 calls basicConfig() on import
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
