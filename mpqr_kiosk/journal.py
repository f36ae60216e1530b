"""The sales journal: SQLite in the state directory, one row per sale plus its history.

Every money transition is committed durably (WAL, ``synchronous=FULL``) before the shell acts on it
(rule 2), so a power cut loses nothing the API may already know about.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from mpqr_kiosk.core.model import CancelReason, Item, Payment, ReceiptState, Sale, SaleState

FILE_NAME = "sales.sqlite3"

# Each entry moves the schema one version up; never edit a released step, add a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sales (
        reference TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        site TEXT NOT NULL,
        items TEXT NOT NULL,
        total INTEGER NOT NULL,
        created_at REAL NOT NULL,
        state TEXT NOT NULL,
        cancel_reason TEXT NOT NULL DEFAULT '',
        order_id TEXT NOT NULL DEFAULT '',
        expires_at REAL NOT NULL DEFAULT 0,
        payment_id TEXT NOT NULL DEFAULT '',
        paid_amount INTEGER NOT NULL DEFAULT 0,
        rejected_payments INTEGER NOT NULL DEFAULT 0,
        receipt TEXT NOT NULL DEFAULT 'none',
        copies INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    );
    CREATE INDEX sales_state ON sales (state, receipt);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        reference TEXT NOT NULL REFERENCES sales (reference),
        at REAL NOT NULL,
        state TEXT NOT NULL,
        receipt TEXT NOT NULL
    );
    CREATE INDEX history_reference ON history (reference);
    """,
    "ALTER TABLE sales ADD COLUMN paid_at REAL NOT NULL DEFAULT 0;",
    """
    ALTER TABLE sales ADD COLUMN ttl REAL NOT NULL DEFAULT 0;
    ALTER TABLE sales ADD COLUMN watch_until REAL NOT NULL DEFAULT 0;
    ALTER TABLE sales ADD COLUMN payments TEXT NOT NULL DEFAULT '[]';
    CREATE INDEX sales_watch ON sales (watch_until) WHERE watch_until > 0;
    """,
    # what is kept of a day once its old sales are pruned (retention_days): counts and totals, JSON
    "CREATE TABLE daily_totals (day TEXT NOT NULL, site TEXT NOT NULL, totals TEXT NOT NULL, PRIMARY KEY (day, site));",
)

_COLUMNS = [f for f in Sale.__dataclass_fields__]


class JournalError(Exception):
    """The journal cannot be opened or is from a newer version of mpqr-kiosk. ``lasting`` when only a person
    can fix it (a file in the way, no permission, a newer or damaged journal), not time (a lock held)."""

    def __init__(self, message: str, lasting: bool = True):
        super().__init__(message)
        self.lasting = lasting


# what time can fix: another process holding the database for a moment, memory
_PASSING = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM}  # with every extended code of each
_PASSING_ERRNOS = {errno.EAGAIN, errno.EINTR, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EBUSY}


def lasting(exc: OSError | sqlite3.Error) -> bool:
    """Whether ``exc``, met opening the state directory or the journal, needs a person rather than time."""
    if isinstance(exc, OSError):
        return exc.errno not in _PASSING_ERRNOS
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in _PASSING  # SQLITE_BUSY_SNAPSHOT (517) is BUSY


class Journal:
    """The SQLite sales journal. Thread-safe; each ``save`` is one durable transaction."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / FILE_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA cache_size=-256")  # KiB: the journal is small; keep the daemon's RSS flat
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"{self.path}: cannot open the sales journal: {exc}", lasting(exc)) from exc
        self.lock = threading.Lock()
        self._owner: tuple[int, int] | None = None

    @classmethod
    def reader(cls, directory: str | Path) -> Journal:
        """The journal opened read-only, for reports beside a running daemon: it creates, migrates and
        writes nothing, so a root shell never leaves the daemon a file it cannot write."""
        self = cls.__new__(cls)
        self.path = Path(directory) / FILE_NAME
        if not self.path.is_file():
            raise JournalError(f"{self.path}: no sales journal here yet (the daemon creates it on its first start)")
        try:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                      isolation_level=None)
            version = self.version
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read the sales journal: {exc}") from exc
        if version != len(MIGRATIONS):
            self.db.close()
            newer = "a newer version of mpqr-kiosk" if version > len(MIGRATIONS) else "an older version"
            raise JournalError(f"{self.path}: schema version {version} is from {newer}; "
                               "start the daemon of this version once to migrate it")
        self.lock = threading.Lock()
        info = self.path.stat()
        self._owner = (info.st_uid, info.st_gid)
        return self

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise JournalError(f"{self.path}: schema version {version} is newer than this mpqr-kiosk knows")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def save(self, sale: Sale) -> None:
        """Insert or update the sale and append to its history, in one durable commit."""
        row = asdict(sale)
        row["items"] = json.dumps([asdict(item) for item in sale.items], ensure_ascii=False)
        row["payments"] = json.dumps([asdict(p) for p in sale.payments])
        row["state"], row["receipt"] = sale.state.value, sale.receipt.value
        row["updated_at"] = time.time()
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "reference")
        with self._transaction():
            self.db.execute(
                f"INSERT INTO sales ({names}) VALUES ({marks}) ON CONFLICT (reference) DO UPDATE SET {updates}",
                row,
            )
            self.db.execute(
                "INSERT INTO history (reference, at, state, receipt) VALUES (?, ?, ?, ?)",
                (sale.reference, row["updated_at"], row["state"], row["receipt"]),
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One durable commit, or nothing at all."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def get(self, reference: str) -> Sale | None:
        rows = self._select("WHERE reference = ?", (reference,))
        return rows[0] if rows else None

    def unfinished(self) -> list[Sale]:
        """Sales a restart must carry on with (oldest first): live ones, paid without a printed receipt,
        refunds not yet confirmed, and ended sales still watched for late payments."""
        return self._select(
            "WHERE state IN (?, ?, ?, ?) OR (state = ? AND receipt != ?) OR watch_until > 0 ORDER BY created_at",
            (SaleState.PUSHING, SaleState.WAITING, SaleState.CANCELLING, SaleState.REFUNDING, SaleState.PAID,
             ReceiptState.PRINTED),
        )

    def in_review(self) -> list[Sale]:
        """Sales whose money needs a person, newest first."""
        return self._select("WHERE state = ? ORDER BY created_at DESC", (SaleState.REVIEW,))

    def recent(self, limit: int = 20) -> list[Sale]:
        return self._select("ORDER BY updated_at DESC LIMIT ?", (limit,))

    def last_paid(self) -> Sale | None:
        rows = self._select("WHERE state = ? ORDER BY paid_at DESC, created_at DESC LIMIT 1", (SaleState.PAID,))
        return rows[0] if rows else None

    def history(self, reference: str) -> list[tuple[str, str]]:
        """The (state, receipt) pairs the sale went through, in order."""
        return [(state, receipt) for _, state, receipt in self.timeline(reference)]

    def timeline(self, reference: str) -> list[tuple[float, str, str]]:
        """(wall-clock time, state, receipt) of each step the sale went through, in order."""
        with self.lock:
            return self.db.execute(
                "SELECT at, state, receipt FROM history WHERE reference = ? ORDER BY id", (reference,)
            ).fetchall()

    def between(self, start: float, end: float) -> list[Sale]:
        """Sales created, paid or changed from ``start`` to ``end`` (seconds, either clock), oldest first."""
        return self._select(
            "WHERE (created_at >= ? AND created_at < ?) OR (paid_at >= ? AND paid_at < ?) "
            "OR (updated_at >= ? AND updated_at < ?) OR (expires_at - ttl >= ? AND expires_at - ttl < ?) "
            "ORDER BY created_at", (start, end) * 4)

    def prunable(self, before: float) -> list[Sale]:
        """Finished sales last changed before ``before``: paid and printed, cancelled, expired, refused or
        refunded, and no longer watched. Never one in review, live, unprinted or with a refund pending."""
        return self._select(
            "WHERE updated_at < ? AND watch_until = 0 AND (state IN (?, ?, ?, ?) OR (state = ? AND receipt = ?))",
            (before, SaleState.CANCELLED, SaleState.EXPIRED, SaleState.FAILED, SaleState.REFUNDED, SaleState.PAID,
             ReceiptState.PRINTED))

    def archived(self, first: str = "", last: str = "9999") -> dict[tuple[str, str], dict]:
        """The totals kept of pruned days, by (ISO day, site), from ``first`` to ``last``."""
        with self.lock:
            rows = self.db.execute("SELECT day, site, totals FROM daily_totals WHERE day >= ? AND day <= ?",
                                   (first, last)).fetchall()
        return {(day, site): json.loads(totals) for day, site, totals in rows}

    def archive(self, references: list[str], totals: dict[tuple[str, str], dict]) -> None:
        """In one commit: the days' ``totals`` replace theirs, and the ``references`` go with their history."""
        rows = [(day, site, json.dumps(t, ensure_ascii=False)) for (day, site), t in totals.items()]
        with self._transaction():
            self.db.executemany("INSERT INTO daily_totals (day, site, totals) VALUES (?, ?, ?) "
                                "ON CONFLICT (day, site) DO UPDATE SET totals = excluded.totals", rows)
            self.db.executemany("DELETE FROM history WHERE reference = ?", [(r,) for r in references])
            self.db.executemany("DELETE FROM sales WHERE reference = ?", [(r,) for r in references])

    def _select(self, where: str, params: tuple) -> list[Sale]:
        with self.lock:
            cursor = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM sales {where}", params)
            rows = cursor.fetchall()
        sales = []
        for row in rows:
            data = dict(zip(_COLUMNS, row, strict=True))
            data["items"] = tuple(Item(**item) for item in json.loads(data["items"]))
            data["state"], data["receipt"] = SaleState(data["state"]), ReceiptState(data["receipt"])
            data["cancel_reason"] = CancelReason(data["cancel_reason"])
            data["payments"] = tuple(Payment(**p) for p in json.loads(data["payments"]))
            sales.append(Sale(**data))
        return sales

    def close(self) -> None:
        with self.lock:
            self.db.close()
        if self._owner and os.geteuid() == 0:
            # A reader in WAL mode leaves -wal and -shm behind; root's would lock the daemon's user out.
            for sidecar in (self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
                try:
                    os.chown(sidecar, *self._owner)
                except FileNotFoundError:
                    pass
