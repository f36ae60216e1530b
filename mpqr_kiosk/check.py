"""``mpqr-kiosk check``: one line per check, for a technician at the box. Exit 4 when any check fails."""

from __future__ import annotations

import sys
from pathlib import Path

from mpqr_kiosk import config as cfg
from mpqr_kiosk import emvco, exits
from mpqr_kiosk.assemble import check_input_specs, display_of, printer_of
from mpqr_kiosk.catalog import CatalogError, load_catalog
from mpqr_kiosk.control import occupied
from mpqr_kiosk.core.model import Screen, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.devices.input import parse_spec
from mpqr_kiosk.mercadopago import answers
from mpqr_kiosk.mercadopago.errors import ApiError, BadResponse
from mpqr_kiosk.mercadopago.http import HttpClient
from mpqr_kiosk.provision import find_pos, static_payload
from mpqr_kiosk.redact import redact
from mpqr_kiosk.screens import qr_fit
from mpqr_kiosk.token import load_token


class Report:
    """Collects check lines; ``failed`` says whether any was a failure."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.failed = False

    def ok(self, what: str, detail: str) -> None:
        self._line("ok  ", what, detail)

    def warn(self, what: str, detail: str) -> None:
        self._line("warn", what, detail)

    def fail(self, what: str, detail: str) -> None:
        self.failed = True
        self._line("FAIL", what, detail)

    def _line(self, mark: str, what: str, detail: str) -> None:
        self.stream.write(redact(f"{mark} {what:<10} {detail}") + "\n")


def run(config_path: str, report: Report | None = None) -> int:
    """Run every check against ``config_path`` (a ``ConfigError`` propagates: exit 3)."""
    report = report or Report()
    config = cfg.load(config_path)
    check_input_specs(config)  # a device spec `run` would refuse is a config error here too
    mp = config.mercadopago
    report.ok("config", f"{config.path}: {mp.api} API, site {mp.site}, POS {mp.external_pos_id}")
    the_site = site(mp.site)
    _check_catalog(config, the_site, report)
    _check_state_dir(config, report)
    _check_control(config, report)
    _check_display(config, report)
    _check_printer(config, report)
    _check_inputs(config, report)
    try:
        token = load_token(mp, config.path)
    except cfg.ConfigError as exc:
        report.fail("token", f"{exc.key}: {exc.problem}")
    else:
        _check_account(config, token, report)
    return exits.CHECK if report.failed else exits.OK


def _check_account(config: cfg.Config, token: str, report: Report) -> None:
    """The token, the POS and its QR, from Mercado Pago. An answer of the wrong shape fails its line, naming
    the request and what was wrong (exit 4, as a request with no answer does: check reports, it does not
    retry); the QR image, only compared, warns."""
    mp = config.mercadopago
    client = HttpClient(mp.api_base, token)
    what = "GET /users/me"
    try:
        me = answers.mapping(client.request("GET", "/users/me"), what, "the account")
        user, site_id = me.get("id"), me.get("site_id")
        answers.require(isinstance(user, int) and not isinstance(user, bool), what, "the account has no numeric id")
        answers.require(site_id is None or isinstance(site_id, str), what, "site_id is not text")
    except BadResponse as exc:
        report.fail("token", exc.plain())
        return
    except ApiError as exc:
        report.fail("token", f"{mp.api_base} refused it or did not answer: {exc}")
        return
    if user != mp.user_id:
        report.fail("token", f"belongs to user {user}, but mercadopago.user_id is {mp.user_id}")
    elif site_id and site_id != mp.site:
        report.fail("token", f"the account is on site {answers.text(site_id)}, but mercadopago.site is {mp.site}")
    else:
        report.ok("token", f"user {user} ({answers.text(me.get('nickname'))}), site {answers.text(site_id)}")
    try:
        pos = find_pos(client, mp.external_pos_id)
    except BadResponse as exc:
        report.fail("pos", exc.plain())
        return
    except ApiError as exc:
        report.fail("pos", str(exc))
        return
    if pos is None:
        report.fail("pos", f"no POS {mp.external_pos_id} on the account; run `mpqr-kiosk provision`")
        return
    if not pos.get("fixed_amount"):
        report.fail("pos", f"POS {mp.external_pos_id} has fixed_amount false: customers would type the amount")
    else:
        report.ok("pos", f"{mp.external_pos_id} (id {answers.text(pos.get('id'))}) in store "
                  f"{answers.text(pos.get('external_store_id'))}")
    if not mp.qr_payload:
        report.fail("qr", "mercadopago.qr_payload is empty; run `mpqr-kiosk provision`")
        return
    try:
        served = static_payload(pos)
    except (ApiError, ValueError) as exc:
        detail = exc.plain() if isinstance(exc, BadResponse) else str(exc)
        report.warn("qr", f"could not read the POS QR image to compare: {detail}")
        return
    if served != mp.qr_payload:
        report.fail("qr", "mercadopago.qr_payload is not this POS's QR; run `mpqr-kiosk provision` again")
    else:
        report.ok("qr", f"payload matches the POS's QR image ({len(served)} chars, CRC ok)")


def _check_catalog(config: cfg.Config, the_site, report: Report) -> None:
    try:
        catalog = load_catalog(config.input.catalog, the_site)
    except CatalogError as exc:
        report.fail("catalog", str(exc))
    else:
        report.ok("catalog", f"{config.input.catalog}: {len(catalog)} products")


def _check_state_dir(config: cfg.Config, report: Report) -> None:
    path = Path(config.state.dir)
    if problem := cfg.directory_problem(path):
        report.fail("journal", f"state.dir: {problem}")
    elif path.is_dir():
        report.ok("journal", f"{path} is writable")
    else:
        report.ok("journal", f"{path} will be created")


def _check_control(config: cfg.Config, report: Report) -> None:
    path = Path(config.control.socket)
    if problem := cfg.directory_problem(path.parent) or occupied(path):
        report.fail("control", f"control.socket: {problem}")
    else:
        report.ok("control", f"{path}")


def _check_display(config: cfg.Config, report: Report) -> None:
    d = config.display
    if d.driver == "none":
        report.warn("display", "driver = \"none\": customers will need the printed QR sticker")
        return
    payload = config.mercadopago.qr_payload
    if payload:
        emvco.verify(payload)
        width, height = (d.height, d.width) if d.rotate in (1, 3) else (d.width, d.height)
        fit = qr_fit(payload, width, height)
        if fit.px_per_module < 2:
            report.warn("display", f"{d.width}x{d.height} shows the QR at {fit.px_per_module} px/module only: "
                        "phones may not read it; use the printed sticker")
        else:
            report.ok("display", f"{d.driver} {d.width}x{d.height}: QR at {fit.px_per_module} px/module")
    if d.driver != "png":
        try:
            display = display_of(d, site(config.mercadopago.site), payload)
        except ValueError as exc:
            report.fail("display", str(exc))
            return
        try:
            display.show(Screen(ScreenKind.READY))
            if display.healthy:
                report.ok("display", f"{d.driver} over {d.interface}: answers")
            else:
                report.fail("display", f"{d.driver} over {d.interface}: {display.error or 'not found'}")
        finally:
            display.close()


def _check_printer(config: cfg.Config, report: Report) -> None:
    p = config.printer
    if p.connection in ("none", "dummy"):
        report.warn("printer", f"connection = \"{p.connection}\": receipts are not printed")
        return
    try:
        printer = printer_of(p)
    except ValueError as exc:
        report.fail("printer", str(exc))
        return
    try:
        status = printer.status()
    except Exception as exc:  # noqa: BLE001 - every printer failure is a failed check line
        report.fail("printer", f"{p.connection}: {exc}")
        return
    finally:
        printer.close()
    if status.problem:
        report.fail("printer", f"{p.connection}: online={status.online}, paper {status.paper}")
    else:
        report.ok("printer", f"{p.connection} ({p.profile}): online={status.online}, paper {status.paper}")


def _check_inputs(config: cfg.Config, report: Report) -> None:
    for spec in config.input.devices:
        kind, _, path, _ = parse_spec(spec)
        if kind in ("evdev", "serial") and path and "://" not in path:
            if Path(path).exists():
                report.ok("input", f"{spec}: present")
            else:
                report.warn("input", f"{spec}: {path} is not plugged in now (the daemon waits for it)")
        else:
            report.ok("input", f"{spec}")
