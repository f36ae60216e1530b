"""Journal retention: finished sales older than ``state.retention_days`` leave the journal once a day, and
their days keep their counts and totals (``daily_totals``), so ``report`` still adds up and the journal
never grows without bound on an SD card. A sale that needs a person, is live, unprinted, watched or has a
refund pending is never pruned."""

from __future__ import annotations

import logging
from datetime import date, tzinfo

from mpqr_kiosk import report
from mpqr_kiosk.journal import Journal

log = logging.getLogger(__name__)
DAY = 86400.0


def prune(journal: Journal, zone: tzinfo | None, site: str, retention_days: int, now: float) -> int:
    """Prune what is older than ``retention_days`` before ``now``; return how many sales left the journal."""
    sales = journal.prunable(now - retention_days * DAY)
    if not sales:
        return 0
    timelines = {s.reference: journal.timeline(s.reference) for s in sales if s.state in report.REFUNDS}
    days = [report.sale_day(s, zone) for s in sales]
    days += [d for t in timelines.values() if (d := report.refund_day(t, zone)) is not None]
    first, last = min(days), max(days)
    kept = journal.archived(first.isoformat(), last.isoformat())
    totals: dict[tuple[str, str], dict] = {}
    for day in report.build(sales, timelines, zone, first, last, site):
        contribution = day.totals()
        if not any(contribution["counts"].values()) and not contribution["taken"] and not contribution["refunded"]:
            continue
        key = (day.day.isoformat(), day.site)
        merged = report.DayReport(date.fromisoformat(key[0]), day.site)
        if key in kept:
            merged.add(kept[key])
        merged.add(contribution)
        totals[key] = merged.totals()
    journal.archive([s.reference for s in sales], totals)
    log.info("journal: %d sales older than %d days pruned; the totals of %d days kept", len(sales),
             retention_days, len(totals))
    return len(sales)
