"""``mpqr-kiosk report`` and ``mpqr-kiosk sales``: the sales journal read for people, beside a running
daemon (opened read-only: these commands never change a sale)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import date, datetime, tzinfo

from mpqr_kiosk import config as cfg
from mpqr_kiosk import exits, report
from mpqr_kiosk.core.model import Sale
from mpqr_kiosk.journal import Journal, JournalError


def _days(args: argparse.Namespace, zone: tzinfo | None) -> tuple[date, date]:
    today = datetime.now(zone).date()
    if args.date and (args.first or args.last):
        raise ValueError("give --date, or --from and --to, not both")
    if args.date:
        return args.date, args.date
    first, last = args.first or args.last or today, args.last or today
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    if (last - first).days > 3660:
        raise ValueError("a range of at most ten years")
    return first, last


def _open(args: argparse.Namespace):
    config = cfg.load(args.config)
    zone = cfg.zone(config.shop.timezone)
    return config, zone, Journal.reader(config.state.dir)


def run(command: str, args: argparse.Namespace) -> int:
    """Run ``report`` or ``sales``; errors are one line naming what is wrong."""
    try:
        config, zone, journal = _open(args)
    except (cfg.ConfigError, JournalError) as exc:
        sys.stderr.write(f"mpqr-kiosk: {exc}\n")
        return exits.CONFIG
    try:
        if command == "sales" and args.ref:
            return _one_sale(journal, args, zone)
        first, last = _days(args, zone)
        if command == "report":
            days = report.of_journal(journal, zone, first, last, config.mercadopago.site)
            render = report.as_json if args.json else report.as_csv if args.csv else report.as_text
            sys.stdout.write(render(days))
        else:
            sales = journal.between(*report.window(first, last, zone))
            chosen = [s for s in sales if first <= report.sale_day(s, zone) <= last
                      and (not args.state or s.state.value == args.state)]
            sys.stdout.write(_sales(chosen, args, zone))
        return exits.OK
    except ValueError as exc:
        sys.stderr.write(f"mpqr-kiosk {command}: {exc}\n")
        return exits.USAGE
    finally:
        journal.close()


def _when(sale: Sale, zone: tzinfo | None) -> str:
    return datetime.fromtimestamp(report.sale_time(sale), zone).strftime("%Y-%m-%d %H:%M:%S")


def _money(sale: Sale, minor: int) -> str:
    return report.money(sale.site, minor)


def _items(sale: Sale) -> str:
    return "; ".join(f"{i.quantity} x {i.title}" if i.quantity != 1 else i.title for i in sale.items)


SALE_COLUMNS = ("reference", "time", "items", "total", "state", "payment_id", "receipt", "copies")


def _row(sale: Sale, zone: tzinfo | None) -> dict:
    return {"reference": sale.reference, "time": _when(sale, zone), "items": _items(sale),
            "total": _money(sale, sale.total), "state": sale.state.value, "payment_id": sale.payment_id,
            "receipt": sale.receipt.value, "copies": sale.copies}


def _sales(sales: list[Sale], args: argparse.Namespace, zone: tzinfo | None) -> str:
    ordered = sorted(sales, key=lambda s: _when(s, zone))
    rows = [_row(s, zone) for s in ordered]
    if args.json:
        return json.dumps([row | {"total_minor": s.total} for row, s in zip(rows, ordered, strict=True)],
                          ensure_ascii=False, indent=2) + "\n"
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, SALE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    if not rows:
        return "no sales\n"
    return "".join(_line(r) + "\n" for r in rows)


def _line(r: dict) -> str:
    copies = f" +{r['copies']} copies" if r["copies"] else ""
    payment = f"  payment {r['payment_id']}" if r["payment_id"] else ""
    return (f"{r['reference']}  {r['time']}  {r['total']:>14}  {r['state']:<10} receipt {r['receipt']}{copies}"
            f"{payment}  {r['items']}")


def _one_sale(journal: Journal, args: argparse.Namespace, zone: tzinfo | None) -> int:
    from mpqr_kiosk.control import parse_reference

    try:
        parse_reference(args.ref)
    except ValueError as exc:
        sys.stderr.write(f"mpqr-kiosk sales: --ref: {str(exc).removeprefix('reference: ')}\n")
        return exits.USAGE
    sale = journal.get(args.ref)
    if sale is None:
        sys.stderr.write(f"mpqr-kiosk sales: no sale {args.ref!r} in {journal.path}\n")
        return exits.CHECK
    timeline = journal.timeline(sale.reference)
    if args.json:
        row = _row(sale, zone) | {
            "total_minor": sale.total, "order_id": sale.order_id, "cancel_reason": sale.cancel_reason.value,
            "paid_amount": sale.paid_amount, "rejected_payments": sale.rejected_payments,
            "items": [{"title": i.title, "quantity": i.quantity, "unit_price": i.unit_price, "code": i.code}
                      for i in sale.items],
            "payments": [{"id": p.id, "status": p.status.value, "amount": p.amount} for p in sale.payments],
            "history": [{"time": datetime.fromtimestamp(at, zone).isoformat(timespec="seconds"), "state": state,
                         "receipt": receipt} for at, state, receipt in timeline],
        }
        sys.stdout.write(json.dumps(row, ensure_ascii=False, indent=2) + "\n")
        return exits.OK
    lines = [f"sale     {sale.reference}  ({sale.site})",
             f"time     {_when(sale, zone)}",
             f"total    {_money(sale, sale.total)}",
             f"state    {sale.state.value}" + (f" ({sale.cancel_reason.value})" if sale.cancel_reason.value else ""),
             f"order    {sale.order_id or '-'}",
             f"receipt  {sale.receipt.value}" + (f", {sale.copies} copies" if sale.copies else "")]
    lines += [f"item     {i.quantity} x {i.title}  {_money(sale, i.amount)}" for i in sale.items]
    lines += [f"payment  {p.id} {p.status.value} {_money(sale, p.amount)}" for p in sale.payments]
    lines += [f"history  {datetime.fromtimestamp(at, zone).strftime('%Y-%m-%d %H:%M:%S')}  {state:<10} "
              f"receipt {receipt}" for at, state, receipt in timeline]
    sys.stdout.write("\n".join(lines) + "\n")
    return exits.OK

