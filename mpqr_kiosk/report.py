"""The shop's day from the journal: sales paid and the money taken, refunds, cancelled and expired sales,
sales a person must look at, receipts not printed yet, and what was sold; one report per local day.

A sale belongs to the day Mercado Pago's clock gives it (the payment's date, or the order's creation,
``expires_at - ttl``), not the box's, whose clock may be wrong after a boot without network. A refund
belongs to the day it was asked for."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING

from mpqr_kiosk.core.model import ReceiptState, Sale, SaleState
from mpqr_kiosk.core.sites import SITES

if TYPE_CHECKING:
    from mpqr_kiosk.journal import Journal

# states whose money was taken (a refund is reported on its own day)
TAKEN = frozenset({SaleState.PAID, SaleState.REFUNDING, SaleState.REFUNDED})
REFUNDS = frozenset({SaleState.REFUNDING, SaleState.REFUNDED})


@dataclass
class ItemLine:
    """One catalog product's sales in the day."""

    code: str
    title: str
    quantity: int = 0
    amount: int = 0


@dataclass
class DayReport:
    """One local day of one site (a box sells in one site; a changed site gets its own lines)."""

    day: date
    site: str
    paid: list[str] = field(default_factory=list)  # references, in order of payment
    taken: int = 0  # minor units approved for those sales
    refunds: list[str] = field(default_factory=list)
    refunded: int = 0
    refunds_pending: list[str] = field(default_factory=list)  # asked for, not yet confirmed by a read
    cancelled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    unprinted: list[str] = field(default_factory=list)  # paid, the original receipt still queued
    live: list[str] = field(default_factory=list)  # not final yet when the report was made
    items: dict[str, ItemLine] = field(default_factory=dict)
    keyed: int = 0  # minor units of amounts keyed by the operator (no catalog product)
    pruned: dict[str, int] = field(default_factory=dict)  # sales of these kinds no longer in the journal

    @property
    def net(self) -> int:
        return self.taken - self.refunded

    def count(self, kind: str) -> int:
        """How many sales of ``kind`` (paid, refunds, cancelled, expired, failed), pruned ones included."""
        return len(getattr(self, kind)) + self.pruned.get(kind, 0)

    def totals(self) -> dict:
        """What the journal keeps of the day once its sales are pruned (``add`` puts it back)."""
        return {"counts": {kind: self.count(kind) for kind in PRUNABLE}, "taken": self.taken,
                "refunded": self.refunded, "keyed": self.keyed,
                "items": {code: [i.title, i.quantity, i.amount] for code, i in self.items.items()}}

    def add(self, totals: dict) -> None:
        """Fold in the totals of sales pruned from the journal."""
        for kind, number in totals["counts"].items():
            if number:
                self.pruned[kind] = self.pruned.get(kind, 0) + number
        self.taken += totals["taken"]
        self.refunded += totals["refunded"]
        self.keyed += totals["keyed"]
        for code, (title, quantity, amount) in totals["items"].items():
            line = self.items.setdefault(code, ItemLine(code, title))
            line.quantity += quantity
            line.amount += amount


PRUNABLE = ("paid", "refunds", "cancelled", "expired", "failed")
"""The kinds of sale a day keeps only counts of once the sales are pruned (none that needs a person)."""


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
"""The days a report, a sales list, a reconcile or a closing ticket may ask for (``window`` needs room)."""


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` day from ``FIRST_DAY`` to ``LAST_DAY``; ValueError says how to write one."""
    try:
        day = date.fromisoformat(text) if len(text) == 10 and text.isascii() and text[4] == text[7] == "-" else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"{text[:40]!r} is not a date: write it as YYYY-MM-DD")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{text!r} is out of range: a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def window(first: date, last: date, zone: tzinfo | None) -> tuple[float, float]:
    """Unix seconds that surely hold the local days ``first`` to ``last``, whatever the zone and whichever
    clock a sale's day comes from (a day's margin either side)."""
    start = datetime.combine(first - timedelta(days=1), time(), zone).timestamp()
    return start, datetime.combine(last + timedelta(days=2), time(), zone).timestamp()


def of_journal(journal: Journal, zone: tzinfo | None, first: date, last: date, site: str) -> list[DayReport]:
    """The days ``first`` to ``last`` from the journal: its sales, and the totals of those pruned."""
    sales = journal.between(*window(first, last, zone))
    timelines = {s.reference: journal.timeline(s.reference) for s in sales if s.state in REFUNDS}
    archive = {(date.fromisoformat(day), other): totals
               for (day, other), totals in journal.archived(first.isoformat(), last.isoformat()).items()}
    return build(sales, timelines, zone, first, last, site, archive)


def local_day(seconds: float, zone: tzinfo | None) -> date:
    """The calendar day of a Unix time in ``zone`` (None: the system's time zone, with its DST rules)."""
    return datetime.fromtimestamp(seconds, zone).date()


def sale_time(sale: Sale) -> float:
    """When the sale happened on Mercado Pago's clock: its payment, else its order's creation (``expires_at
    - ttl``), else the box's own time of the sale."""
    if sale.paid_at > 0:
        return sale.paid_at
    if sale.expires_at > 0 and sale.ttl > 0:
        return sale.expires_at - sale.ttl
    return sale.created_at


def sale_day(sale: Sale, zone: tzinfo | None) -> date:
    """The day Mercado Pago's clock puts the sale on."""
    return local_day(sale_time(sale), zone)


def refund_day(timeline: list[tuple[float, str, str]], zone: tzinfo | None) -> date | None:
    """When the refund was asked for: the first step into ``refunding`` (or ``refunded``)."""
    for at, state, _ in timeline:
        if state in REFUNDS:
            return local_day(at, zone)
    return None


def build(sales: Iterable[Sale], timelines: dict[str, list[tuple[float, str, str]]], zone: tzinfo | None,
          first: date, last: date, site: str, archive: dict[tuple[date, str], dict] | None = None) -> list[DayReport]:
    """The reports of the days ``first`` to ``last`` (inclusive): every day of ``site``, even when empty,
    and the days another site sold on (a box whose site was changed); ``archive`` holds the totals of the
    sales pruned from the journal, by day and site."""
    days: dict[tuple[date, str], DayReport] = {}

    def day_of(day: date, site: str) -> DayReport | None:
        if not first <= day <= last:
            return None
        return days.setdefault((day, site), DayReport(day, site))

    for sale in sales:
        report = day_of(sale_day(sale, zone), sale.site)
        if report is not None:
            _count(report, sale)
        if sale.state in REFUNDS:
            asked = refund_day(timelines.get(sale.reference, []), zone)
            refund = day_of(asked, sale.site) if asked else None
            if refund is not None:
                if sale.state is SaleState.REFUNDED:
                    refund.refunds.append(sale.reference)
                    refund.refunded += sale.paid_amount or sale.total
                else:
                    refund.refunds_pending.append(sale.reference)
    day = first
    while day <= last:
        days.setdefault((day, site), DayReport(day, site))
        day += timedelta(days=1)
    for (day, other), totals in (archive or {}).items():
        report = day_of(day, other)
        if report is not None:
            report.add(totals)
    return [days[key] for key in sorted(days)]


def _count(report: DayReport, sale: Sale) -> None:
    ref = sale.reference
    if sale.state in TAKEN:
        report.paid.append(ref)
        report.taken += sale.paid_amount or sale.total
        if sale.receipt is not ReceiptState.PRINTED:
            report.unprinted.append(ref)
        for item in sale.items:
            if not item.code:
                report.keyed += item.amount
                continue
            line = report.items.setdefault(item.code, ItemLine(item.code, item.title))
            line.quantity += item.quantity
            line.amount += item.amount
    elif sale.state is SaleState.CANCELLED:
        report.cancelled.append(ref)
    elif sale.state is SaleState.EXPIRED:
        report.expired.append(ref)
    elif sale.state is SaleState.FAILED:
        report.failed.append(ref)
    elif sale.state is SaleState.REVIEW:
        report.review.append(ref)
    else:
        report.live.append(ref)


def money(site: str, minor: int) -> str:
    """An amount in ``site``'s format (minor units as they are for a site this version does not know)."""
    return SITES[site].format(minor) if site in SITES else str(minor)


def _plain(site: str, minor: int) -> str:
    """An amount for a spreadsheet: 1234.50, or 1234 in a currency without decimals."""
    decimals = SITES[site].decimals if site in SITES else 2
    sign, units = ("-" if minor < 0 else ""), abs(minor)
    return f"{sign}{units // 10**decimals}.{units % 10**decimals:0{decimals}d}" if decimals else f"{sign}{units}"


def as_text(reports: list[DayReport]) -> str:
    out = []
    for r in reports:
        m = partial(money, r.site)
        out += [f"{r.day.isoformat()}  {r.site}",
                f"  paid sales      {r.count('paid'):>5}   taken {m(r.taken)}",
                f"  refunds         {r.count('refunds'):>5}   refunded {m(r.refunded)}"
                + (f" (+{len(r.refunds_pending)} not yet confirmed)" if r.refunds_pending else ""),
                f"  net                     {m(r.net)}",
                f"  cancelled       {r.count('cancelled'):>5}",
                f"  expired         {r.count('expired'):>5}"]
        if r.count("failed"):
            out.append(f"  refused by MP   {r.count('failed'):>5}")
        if r.review:
            out.append(f"  NEEDS REVIEW    {len(r.review):>5}   {', '.join(r.review)}  (mpqr-kiosk review)")
        if r.unprinted:
            out.append(f"  receipts queued {len(r.unprinted):>5}   {', '.join(r.unprinted)}")
        if r.live:
            out.append(f"  still live      {len(r.live):>5}   {', '.join(r.live)}")
        if r.items or r.keyed:
            out.append("  sold:")
            out += [f"    {line.quantity:>4} x {line.title}  {m(line.amount)}"
                    for line in sorted(r.items.values(), key=lambda line: (-line.amount, line.title))]
            if r.keyed:
                out.append(f"         keyed amounts  {m(r.keyed)}")
    return "\n".join(out) + "\n"


def as_json(reports: list[DayReport]) -> str:
    def one(r: DayReport) -> dict:
        def amount(minor: int) -> dict:
            return {"minor": minor, "text": money(r.site, minor)}

        return {
            "date": r.day.isoformat(), "site": r.site,
            "currency": SITES[r.site].currency if r.site in SITES else "",
            "paid": {"count": r.count("paid"), "references": r.paid}, "taken": amount(r.taken),
            "refunds": {"count": r.count("refunds"), "references": r.refunds, "pending": r.refunds_pending},
            "refunded": amount(r.refunded), "net": amount(r.net),
            "cancelled": {"count": r.count("cancelled"), "references": r.cancelled},
            "expired": {"count": r.count("expired"), "references": r.expired},
            "failed": {"count": r.count("failed"), "references": r.failed}, "review": r.review,
            "pruned": dict(r.pruned),
            "receipts_queued": r.unprinted, "live": r.live,
            "items": [{"code": i.code, "title": i.title, "quantity": i.quantity, "amount": amount(i.amount)}
                      for i in sorted(r.items.values(), key=lambda i: (-i.amount, i.title))],
            "keyed": amount(r.keyed),
        }
    return json.dumps([one(r) for r in reports], ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = ("date", "site", "currency", "paid_sales", "taken", "refunds", "refunded", "net", "cancelled",
               "expired", "failed", "review", "receipts_queued", "review_references")


def as_csv(reports: list[DayReport]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        writer.writerow([r.day.isoformat(), r.site, SITES[r.site].currency if r.site in SITES else "",
                         r.count("paid"), _plain(r.site, r.taken), r.count("refunds"), _plain(r.site, r.refunded),
                         _plain(r.site, r.net), r.count("cancelled"), r.count("expired"), r.count("failed"),
                         len(r.review),
                         len(r.unprinted), " ".join(r.review)])
    return buffer.getvalue()
