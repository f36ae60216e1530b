"""Secrets never leave the box (rule 8): every text that reaches a log, the control socket, ``status``,
``check``, the journal or an error passes through ``redact``. The access token is registered once it is read;
anything shaped like a Mercado Pago token is masked too, in case an answer echoes one we never saw."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
TOKEN_SHAPE = re.compile(r"\b(APP_USR|TEST)-[A-Za-z0-9_-]{8,}")
SECRETS: set[str] = set()


def add_secret(secret: str) -> None:
    """Never let this string reach anything a person or another program reads."""
    if secret:
        SECRETS.add(secret)


def redact(text: str, secrets: set[str] | list[str] | None = None) -> str:
    for secret in SECRETS if secrets is None else secrets:
        if secret:
            text = text.replace(secret, MASK)
    return TOKEN_SHAPE.sub(lambda m: f"{m.group(1)}-{MASK}", text)


def redact_all(value: Any) -> Any:
    """``redact`` on every string inside a JSON-like value (dict keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(v) for v in value]
    return value
