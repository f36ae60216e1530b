"""The ``mpqr-kiosk`` command line. Exit codes: 0 ok, 2 usage, 3 config invalid, 4 a check failed,
75 temporary failure (systemd restarts the daemon)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import date, datetime
from pathlib import Path

from mpqr_kiosk import __version__, exits
from mpqr_kiosk import config as cfg
from mpqr_kiosk.core.model import SaleState
from mpqr_kiosk.core.sites import SITES
from mpqr_kiosk.redact import redact

CONTROL_TIMEOUT = 60.0  # seconds a control command waits for the daemon (a closing ticket: 15 more)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpqr-kiosk",
        description="Countertop box for Mercado Pago in-store QR payments (attended model).",
        epilog="Exit codes: 0 ok, 2 usage, 3 config invalid, 4 a check failed or the daemon refused, "
               "75 temporary failure (e.g. the daemon is not running).",
    )
    parser.add_argument("--version", action="version", version=f"mpqr-kiosk {__version__}")
    parser.add_argument("--config", default=cfg.default_path(), metavar="PATH",
                        help="the kiosk.toml to use (default: $MPQR_KIOSK_CONFIG or %(default)s)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("run", help="the daemon (what systemd starts)")
    demo = commands.add_parser("demo", help="a whole sale on emulated hardware against an embedded emulator")
    demo.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                      help="where frames, receipt and log go (default: %(default)s)")
    demo.add_argument("--site", default="MLB", choices=sorted(SITES), help="Mercado Pago site (default: %(default)s)")

    from mpqr_kiosk.emulator import cli as emulator_cli

    emulator_cli.configure(commands.add_parser(
        "emulator", help="the Mercado Pago emulator as a standalone server, and its buyer actions"))

    commands.add_parser("provision", help="find or create the store and POS; write the POS's QR payload to the config")
    commands.add_parser("check", help="validate config, token, POS and every device; one line per check")
    status = commands.add_parser("status", help="ask the running daemon for its state")
    status.add_argument("--json", action="store_true", help="print the daemon's raw JSON answer")
    sale = commands.add_parser("sale", help="start a sale of an amount on the running daemon")
    sale.add_argument("--amount", required=True, help="the total, e.g. 12.50 or 12,50")
    commands.add_parser("cancel", help="cancel the sale waiting for payment")
    reprint = commands.add_parser("reprint", help="print a COPY of a paid sale's receipt (default: the last one)")
    reprint.add_argument("reference", nargs="?", help="the sale's external_reference")
    refund = commands.add_parser("refund", help="refund a paid sale (or one in review) in full: every approved payment")
    refund.add_argument("reference", help="the sale's external_reference")
    review = commands.add_parser("review", help="sales whose money needs a person (not exactly the total, late or "
                                                "double payments), with what Mercado Pago approved")
    review.add_argument("--json", action="store_true", help="print the daemon's raw JSON answer")
    report = commands.add_parser(
        "report", help="the day's takings from the journal: paid sales, refunds, cancelled, expired, review",
        description="Per local day (shop.timezone): paid sales and the money taken, refunds, cancelled and "
                    "expired sales, sales in REVIEW, receipts still queued, and what was sold. A sale counts "
                    "on the day of its payment on Mercado Pago's clock; a refund on the day it was asked for.")
    _days(report)
    report.add_argument("--print", action="store_true",
                        help="print the day (--date, default today) on the receipt printer as a closing ticket, "
                             "through the running daemon (the keypad's * * # on the idle screen does the same)")
    sales = commands.add_parser(
        "sales", help="the sales in the journal (time, items, total, state, payment, receipt), or one sale's history",
        description="Lists the sales of a day or range from the journal; --ref shows one sale whole, with "
                    "every step it went through and every payment Mercado Pago showed.")
    _days(sales)
    sales.add_argument("--state", choices=[state.value for state in SaleState], help="only the sales in this state")
    sales.add_argument("--ref", metavar="REF", help="one sale (its external_reference), with its whole history")
    reconcile = commands.add_parser(
        "reconcile", help="the day's journal beside Mercado Pago's payments for this POS; exit 4 on a difference",
        description="Reads the day's payments from Mercado Pago (GET /v1/payments/search) and lists, beside the "
                    "journal: money Mercado Pago approved for this POS that no paid sale shows (a late payment, "
                    "a sale from before a reinstall), paid sales Mercado Pago does not show approved, amounts "
                    "that differ and refunds seen on one side only. Exit 0 when everything matches, 4 on any "
                    "difference, 75 when Mercado Pago cannot be read.")
    reconcile.add_argument("--date", type=day_argument, metavar="YYYY-MM-DD",
                           help="the day (default: today, shop time)")
    reconcile.add_argument("--json", action="store_true", help="JSON for a script")
    certify = commands.add_parser(
        "certify", help="walk through Mercado Pago's seven attended-model events live, with a test buyer; "
                        "writes a report",
        description="The technician's live validation on an account with test users (stop the daemon first): "
                    "a scan before the order, a scan after it, an approved payment, a rejected one that keeps "
                    "the order, an approved retry, a refund and a cash cancel. Each outcome is read from the "
                    "API; the report (Markdown and JSON in the state directory) names the order and payment "
                    "ids Mercado Pago asks for. An interrupted run resumes. Exit 0 when all seven pass, 4 when "
                    "one fails or the account is a production one (without --production).")
    certify.add_argument("--production", action="store_true",
                         help="allow a production account (by default only test credentials or a test user)")
    certify.add_argument("--restart", action="store_true", help="forget an interrupted run and start over")
    certify.add_argument("--step-timeout", type=seconds_argument, default=300.0, metavar="SECONDS",
                         help="how long each step waits for the buyer (default: %(default)s)")
    preview = commands.add_parser("preview", help="render every screen and a sample receipt to PNG")
    preview.add_argument("--out", type=Path, default=Path("preview-out"), metavar="DIR")
    preview.add_argument("--at", type=datetime.fromisoformat, default=None, metavar="YYYY-MM-DDTHH:MM",
                         help="the time printed on the samples (default: now); fixed, the pictures are too")
    diag = commands.add_parser("diagnostics", help="a support bundle with secrets redacted")
    diag.add_argument("--out", type=Path, default=None, metavar="FILE",
                      help="write a .tar.gz there (default: mpqr-kiosk-diagnostics-<time>.tar.gz)")
    return parser


def day_argument(text: str) -> date:
    """An argparse type: a YYYY-MM-DD date the reports can cover, or a usage error that says how to write one."""
    from mpqr_kiosk.report import parse_day

    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seconds_argument(text: str) -> float:
    """An argparse type: a number of seconds, more than zero and at most a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds from 0 to 86400")
    return value


def _days(parser: argparse.ArgumentParser) -> None:
    """--date, or --from and --to: the local days a command covers (default: today); --csv or --json."""
    parser.add_argument("--date", type=day_argument, metavar="YYYY-MM-DD", help="one day (default: today, shop time)")
    parser.add_argument("--from", dest="first", type=day_argument, metavar="YYYY-MM-DD", help="first day of a range")
    parser.add_argument("--to", dest="last", type=day_argument, metavar="YYYY-MM-DD",
                        help="last day of a range (default: today)")
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--csv", action="store_true", help="CSV for a spreadsheet")
    formats.add_argument("--json", action="store_true", help="JSON for a script")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except cfg.ConfigError as exc:
        sys.stderr.write(f"mpqr-kiosk: config invalid: {exc}\n")
        return exits.CONFIG
    except KeyboardInterrupt:
        return exits.TEMPFAIL


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "demo":
        from mpqr_kiosk import demo

        if not _out_dir(command, args.out):
            return exits.CONFIG
        try:
            return demo.run(args.out, args.site)
        except demo.DemoFailed as exc:
            sys.stderr.write(f"mpqr-kiosk demo: failed: {exc} (see {args.out / 'demo.log'})\n")
            return exits.CHECK
    if command == "emulator":
        from mpqr_kiosk.emulator import cli as emulator_cli

        return emulator_cli.run(args)
    if command == "run":
        from mpqr_kiosk import daemon, logsetup

        logsetup.setup()
        return daemon.run(args.config)
    if command in ("status", "sale", "cancel", "reprint", "refund", "review"):
        return _control(args)
    if command == "check":
        from mpqr_kiosk import check

        return check.run(args.config)
    if command == "provision":
        from mpqr_kiosk import provision

        return provision.run(args.config)
    if command == "report" and args.print:
        if args.first or args.last:
            sys.stderr.write("mpqr-kiosk report: --print takes one day (--date), not a range\n")
            return exits.USAGE
        return _control(args)
    if command in ("report", "sales"):
        from mpqr_kiosk import journal_commands

        return journal_commands.run(command, args)
    if command == "certify":
        from mpqr_kiosk import certify

        return certify.run(args)
    if command == "reconcile":
        from mpqr_kiosk import reconcile

        return reconcile.run(args)
    if command == "preview":
        from mpqr_kiosk import preview

        try:
            return preview.run(args.config, args.out, args.at)
        except OSError as exc:
            sys.stderr.write(f"mpqr-kiosk preview: cannot write {exc.filename or args.out}: {exc.strerror}\n")
            return exits.CONFIG
    if command == "diagnostics":
        from mpqr_kiosk import diagnostics

        try:
            return diagnostics.run(args.config, args.out)
        except OSError as exc:
            sys.stderr.write(f"mpqr-kiosk diagnostics: cannot write {exc.filename or args.out}: {exc.strerror}\n")
            return exits.CONFIG
    return exits.USAGE


def _out_dir(command: str, out: Path) -> bool:
    """Make ``--out`` a folder the command can write in; False, with a message, when it cannot be one."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
        sys.stderr.write(f"mpqr-kiosk {command}: --out {out}: cannot make this folder ({reason})\n")
        return False
    if not os.access(out, os.W_OK | os.X_OK):
        sys.stderr.write(f"mpqr-kiosk {command}: --out {out}: no permission to write in this folder\n")
        return False
    return True


def _control(args: argparse.Namespace) -> int:
    from mpqr_kiosk.control import Busy, parse_amount, parse_reference, request

    config = cfg.load(args.config)
    message: dict = {"command": args.command}
    try:  # what the daemon would refuse is a usage error here, before the socket
        if args.command == "sale":
            parse_amount(args.amount, SITES[config.mercadopago.site])
            message["amount"] = args.amount
        if args.command in ("reprint", "refund") and args.reference is not None:
            message["reference"] = parse_reference(args.reference)
    except ValueError as exc:
        sys.stderr.write(f"mpqr-kiosk {args.command}: {exc}\n")
        return exits.USAGE
    if args.command == "report":
        message["date"] = args.date.isoformat() if args.date else None
    timeout = CONTROL_TIMEOUT + (15 if args.command == "report" else 0)
    try:
        answer = request(config.control.socket, message, timeout=timeout)
    except Busy:
        sys.stderr.write(f"mpqr-kiosk: the daemon is busy (its control socket at {config.control.socket} stayed full "
                         f"for {timeout:g}s); try again in a moment\n")
        return exits.TEMPFAIL
    except (FileNotFoundError, ConnectionRefusedError):
        sys.stderr.write(f"mpqr-kiosk: the daemon is not running (no control socket at {config.control.socket})\n")
        return exits.TEMPFAIL
    except PermissionError:
        sys.stderr.write(f"mpqr-kiosk: no permission on {config.control.socket}; "
                         "run as root or a member of the mpqr-kiosk group\n")
        return exits.CHECK
    except (ConnectionError, TimeoutError) as exc:
        sys.stderr.write(f"mpqr-kiosk: no answer from the daemon ({exc}); try again, or see journalctl\n")
        return exits.TEMPFAIL
    except OSError as exc:
        sys.stderr.write(f"mpqr-kiosk: cannot use the control socket {config.control.socket}: {exc.strerror or exc}\n")
        return exits.TEMPFAIL
    try:
        if args.command == "status" and not args.json and answer["ok"]:
            text = _status_text(answer)
        elif args.command == "review" and not args.json and answer["ok"]:
            text = _review_text(answer)
        else:
            text = json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
    except (KeyError, TypeError, AttributeError):  # a daemon of another version: show what it said
        text = json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
    sys.stdout.write(redact(text))
    return exits.OK if answer["ok"] else exits.CHECK


def _review_text(answer: dict) -> str:
    if not answer["sales"]:
        return "no sale needs review\n"
    lines = []
    for sale in answer["sales"]:
        lines.append(f"{sale['reference']}: total {sale['total']}, approved {sale['approved']}")
        lines += [f"  payment {p['id']} {p['status']} {p['amount']}" for p in sale["payments"]]
    lines.append("refund a sale with: mpqr-kiosk refund REFERENCE (every approved payment of it)")
    return "\n".join(lines) + "\n"


def _status_text(status: dict) -> str:
    lines = [f"mpqr-kiosk {status['version']} · {status['site']} · {status['api']} API",
             f"screen:      {status['screen']}",
             f"online:      {'yes' if status['online'] else 'NO (no QR sales until the API answers)'}"]
    sale = status.get("sale")
    if sale:
        left = f", {sale['seconds_left']}s left" if sale.get("seconds_left") is not None else ""
        lines.append(f"sale:        {sale['reference']} {sale['state']} {sale['total']}{left}, "
                     f"{sale['rejected_payments']} rejected")
    else:
        lines.append("sale:        none")
    if status["reconciling"]:
        lines.append(f"reconciling: {', '.join(status['reconciling'])}")
    lines.append(f"print queue: {', '.join(status['print_queue']) or 'empty'}")
    for key, label in (("review", "NEEDS REVIEW"), ("refunding", "refunding"), ("watching", "watching")):
        if status.get(key):
            lines.append(f"{label + ':':<13}{', '.join(status[key])}")
    devices = status["devices"]
    lines.append(f"printer:     {'ok' if devices['printer']['ok'] else 'PROBLEM'}")
    lines.append(f"display:     {'ok' if devices['display']['healthy'] else 'PROBLEM'}")
    for source in devices["inputs"]:
        lines.append(f"input:       {source['name']} {'ok' if source['healthy'] else 'GONE'}")
    for error in status["last_errors"]:
        lines.append(f"error:       {error}")
    return "\n".join(lines) + "\n"
