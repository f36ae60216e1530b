"""The SQLite journal: durable rows, history, what a restart must finish, and schema versions."""

import sqlite3
from dataclasses import replace

import pytest

from mpqr_kiosk.core.model import Item, Payment, PaymentStatus, ReceiptState, Sale, SaleState
from mpqr_kiosk.journal import MIGRATIONS, Journal, JournalError, lasting


def sale(ref: str, **changes) -> Sale:
    base = Sale(ref, f"{ref}-key", "MLB", (Item("Pão de queijo", 450, 2, "SKU1", "789"),), 900, 1_700_000_000.0)
    return replace(base, **changes)


def test_round_trip_and_history(tmp_path):
    journal = Journal(tmp_path)
    first = sale("R1")
    journal.save(first)
    journal.save(replace(first, state=SaleState.WAITING, order_id="ORD1"))
    journal.save(replace(first, state=SaleState.PAID, payment_id="99", paid_amount=900, receipt=ReceiptState.PRINTING))
    journal.close()

    reopened = Journal(tmp_path)
    got = reopened.get("R1")
    assert got == replace(first, state=SaleState.PAID, order_id="", payment_id="99", paid_amount=900,
                          receipt=ReceiptState.PRINTING)
    assert got.items[0].title == "Pão de queijo"
    assert reopened.history("R1") == [("pushing", "none"), ("waiting", "none"), ("paid", "printing")]
    assert reopened.get("nope") is None


def test_unfinished_lists_what_a_restart_must_finish(tmp_path):
    journal = Journal(tmp_path)
    journal.save(sale("A", state=SaleState.PUSHING, created_at=1))
    journal.save(sale("B", state=SaleState.WAITING, created_at=2))
    journal.save(sale("C", state=SaleState.PAID, receipt=ReceiptState.PRINTING, created_at=3))
    journal.save(sale("D", state=SaleState.PAID, receipt=ReceiptState.PRINTED, created_at=4))
    journal.save(sale("E", state=SaleState.CANCELLED, created_at=5))
    journal.save(sale("F", state=SaleState.CANCELLING, created_at=6))
    journal.save(sale("G", state=SaleState.CANCELLED, created_at=7, watch_until=1e10))  # still watched
    journal.save(sale("H", state=SaleState.REFUNDING, created_at=8))  # a refund to confirm
    journal.save(sale("I", state=SaleState.REVIEW, created_at=9))
    assert [s.reference for s in journal.unfinished()] == ["A", "B", "C", "F", "G", "H"]
    assert [s.reference for s in journal.in_review()] == ["I"]
    assert journal.last_paid().reference in ("C", "D")


def test_idempotency_keys_are_unique(tmp_path):
    journal = Journal(tmp_path)
    journal.save(sale("A"))
    with pytest.raises(sqlite3.IntegrityError):
        journal.save(replace(sale("B"), idempotency_key="A-key"))
    assert journal.get("B") is None  # the failed save left nothing half-written


def test_wal_and_version(tmp_path):
    journal = Journal(tmp_path)
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal.version == len(MIGRATIONS)


def test_a_journal_from_a_newer_version_is_refused(tmp_path):
    Journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "sales.sqlite3")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(tmp_path)


def test_a_version_1_journal_is_migrated_keeping_its_sales(tmp_path):
    db = sqlite3.connect(tmp_path / "sales.sqlite3")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    db.execute(
        "INSERT INTO sales (reference, idempotency_key, site, items, total, created_at, state, updated_at) "
        "VALUES ('OLD', 'OLD-key', 'MLA', '[]', 500, 1.0, 'waiting', 1.0)"
    )
    db.commit()
    db.close()
    journal = Journal(tmp_path)
    assert journal.version == len(MIGRATIONS) >= 2
    old = journal.get("OLD")
    assert old.state is SaleState.WAITING and old.total == 500 and old.paid_at == 0
    assert [s.reference for s in journal.unfinished()] == ["OLD"]


def test_a_version_2_journal_gains_the_watch_the_time_to_live_and_the_payments(tmp_path):
    db = sqlite3.connect(tmp_path / "sales.sqlite3")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2; COMMIT;")
    db.execute(
        "INSERT INTO sales (reference, idempotency_key, site, items, total, created_at, state, updated_at) "
        "VALUES ('OLD', 'OLD-key', 'MLA', '[]', 500, 1.0, 'paid', 1.0)"
    )
    db.commit()
    db.close()
    journal = Journal(tmp_path)
    old = journal.get("OLD")
    assert (old.ttl, old.watch_until, old.payments) == (0, 0, ())
    journal.save(replace(old, payments=(Payment("p1", "approved", 500), Payment("p2", "in_process", 10)),
                         watch_until=2.5))
    again = Journal(tmp_path).get("OLD")
    assert again.payments == (Payment("p1", "approved", 500), Payment("p2", "in_process", 10))
    assert again.watch_until == 2.5 and again.payments[1].status is PaymentStatus.IN_PROCESS


def test_a_busy_snapshot_is_passing_not_lasting(tmp_path):
    """SQLite's extended codes (SQLITE_BUSY_SNAPSHOT, 517) are their base code's kind: time clears them (exit 75)."""
    path = tmp_path / "j.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("pragma journal_mode=wal")
    writer.execute("create table t(x)")
    reader = sqlite3.connect(path, isolation_level=None, timeout=0)
    reader.execute("begin")
    reader.execute("select * from t").fetchall()  # a read snapshot, then someone else writes
    writer.execute("insert into t values (1)")
    with pytest.raises(sqlite3.OperationalError) as raised:
        reader.execute("insert into t values (2)")
    assert raised.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    assert not lasting(raised.value)
    assert lasting(sqlite3.DatabaseError("file is not a database"))
