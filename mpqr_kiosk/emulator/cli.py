"""``mpqr-kiosk emulator``: serve the Mercado Pago emulator, or act as the buyer against a running one."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from typing import Any

import requests

from mpqr_kiosk import exits
from mpqr_kiosk.core.sites import SITES
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.loopback import is_loopback_host

log = logging.getLogger(__name__)
DEFAULT_URL = "http://127.0.0.1:8765"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options and its buyer subcommands (``scan``, ``pay``, ``expire``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8765, help="port to listen on, 0 for any free one "
                        "(default: %(default)s)")
    parser.add_argument(
        "--site", default="MLA", choices=sorted(SITES), help="Mercado Pago site (default: %(default)s)"
    )
    parser.add_argument(
        "--user-id", type=int, default=123456789, help="the seller's user id (default: %(default)s)"
    )
    parser.add_argument(
        "--busy-pos",
        choices=("replace", "409"),
        default="replace",
        help="a new order on a POS that has one: replace it, or answer 409 (default: %(default)s)",
    )
    parser.add_argument(
        "--merchant-order",
        choices=("at_create", "at_scan", "at_payment"),
        default="at_create",
        help="when a merchant order appears: with the order, at each scan, or with the first payment "
        "(Mercado Pago allows all three since 2024; default: %(default)s)",
    )
    parser.add_argument("--refund-delay", type=float, default=0.0, metavar="SECONDS",
                        help="a refund stays processing this long before it is done (default: %(default)s)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    actions = parser.add_subparsers(dest="emulator_action", metavar="ACTION")
    for name, text in (
        ("scan", "the buyer scans the POS QR"),
        ("pay", "the buyer pays the order it has open (or the POS's current order)"),
        ("decide", "Mercado Pago decides a payment that is in review"),
        ("expire", "the POS's current order expires now"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--url", default=DEFAULT_URL, help="the running emulator (default: %(default)s)")
        if name == "decide":
            action.add_argument("payment_id", help="the payment's id (an Orders-API order: its PAY… id)")
            action.add_argument("--result", choices=("approved", "rejected"), default="approved")
            continue
        action.add_argument("--pos", default="POS001", help="external_pos_id (default: %(default)s)")
        if name in ("scan", "pay"):
            action.add_argument("--phone", default="buyer", help="which buyer (two phones can scan one QR)")
        if name == "pay":
            action.add_argument("--result", choices=("approved", "rejected", "in_process"), default="approved")
            action.add_argument("--amount", help="amount paid, e.g. 12.50 (default: what is due)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, or run one buyer action and print its JSON answer."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    action = getattr(args, "emulator_action", None)
    if action:
        return _act(action, args)
    return _serve(args)


def _act(action: str, args: argparse.Namespace) -> int:
    if action == "decide":
        body: dict[str, Any] = {"payment_id": args.payment_id, "result": args.result}
    else:
        body = {"external_pos_id": args.pos}
    if action in ("scan", "pay"):
        body["phone"] = args.phone
    if action == "pay":
        body["result"] = args.result
        if args.amount is not None:
            body["amount"] = args.amount
    with requests.Session() as session:
        session.trust_env = False  # the emulator is local: no proxy from the environment
        try:
            answer = session.post(f"{args.url.rstrip('/')}/_emu/{action}", json=body, timeout=10)
        except requests.RequestException as exc:
            log.error("cannot reach the emulator at %s: %s", args.url, exc)
            return exits.TEMPFAIL
    try:
        shown: Any = answer.json()
    except ValueError:
        shown = answer.text
    print(json.dumps(shown, indent=2, ensure_ascii=False))  # noqa: T201
    return exits.OK if answer.ok else exits.CHECK


def _port(text: str) -> int:
    """A TCP port number (0: any free one), for argparse."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: a number 0-65535")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    if not args.allow_remote and not is_loopback_host(args.host):
        log.error(
            "refusing to listen on %s: not a loopback address (use --allow-remote to insist)", args.host
        )
        return exits.USAGE
    emulator = Emulator(site=args.site, user_id=args.user_id, busy_pos=args.busy_pos,
                        merchant_order=args.merchant_order, refund_delay=args.refund_delay)
    server = EmulatorServer(emulator, args.host, args.port, allow_remote=args.allow_remote)
    try:
        server.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return exits.TEMPFAIL
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("Mercado Pago emulator on %s (site %s, seller %s)", server.url, args.site, args.user_id)
    log.info(
        "any bearer token works; one ending in -<digits> acts as that user id, e.g. TEST-0000-%s",
        args.user_id,
    )
    log.info("POS001 static QR payload: %s", emulator.payload("POS001"))
    log.info("buyer actions: mpqr-kiosk emulator scan|pay|expire --url %s", server.url)
    while not stop.wait(0.5):
        pass
    server.stop()
    log.info("emulator stopped")
    return exits.OK
