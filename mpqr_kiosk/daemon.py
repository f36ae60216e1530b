"""``mpqr-kiosk run``: the daemon systemd starts (Type=notify, watchdog, SIGHUP reload, SIGTERM stop)."""

from __future__ import annotations

import logging
import signal
import time

from mpqr_kiosk import config as cfg
from mpqr_kiosk import exits
from mpqr_kiosk.assemble import build, shop_of, timing_of
from mpqr_kiosk.catalog import CatalogError, load_catalog
from mpqr_kiosk.control import AlreadyRunning as SocketTaken
from mpqr_kiosk.control import Commands, ControlServer, SocketUnusable
from mpqr_kiosk.core.events import Reconfigure, Tick
from mpqr_kiosk.core.model import LedPattern
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.devices.leds import Leds
from mpqr_kiosk.instance import AlreadyRunning, InstanceLock
from mpqr_kiosk.journal import JournalError, lasting
from mpqr_kiosk.notify import notify, watchdog_interval
from mpqr_kiosk.shell import Runtime
from mpqr_kiosk.token import load_token

log = logging.getLogger(__name__)

IDLE_STEP = 30.0  # the longest the loop sleeps when nothing is due and no watchdog is set
FATAL_HOLD = 3.0  # seconds the red LED stays on before a refused start exits


class Daemon:
    """Owns the runtime between start and stop, and what signals do to it."""

    def __init__(self, config_path: str):
        self.config_path = config_path
        self.stopping = False
        self.reload_requested = False
        self.runtime: Runtime | None = None
        self.control: ControlServer | None = None
        self.lock: InstanceLock | None = None
        self.status = ""

    def run(self) -> int:
        config = None
        try:
            config = cfg.load(self.config_path)
            token = load_token(config.mercadopago, config.path)
            catalog = load_catalog(config.input.catalog, site(config.mercadopago.site))
            self.lock = _lock(config)
            self.runtime = build(config, token, catalog)
        except (cfg.ConfigError, CatalogError) as exc:
            return _refuse(f"config invalid, not starting: {exc}", config.leds if config else cfg.LedsConfig())
        except AlreadyRunning as exc:  # never steal the live daemon's journal or socket
            log.critical("not starting: %s", exc)
            notify(f"STATUS=Not started: {exc}")
            return exits.TEMPFAIL
        except JournalError as exc:
            if exc.lasting:  # a damaged or newer journal, a file in the way: a restart cannot help
                return _refuse(f"not starting: {exc}", config.leds)
            log.critical("not starting: %s", exc)
            return exits.TEMPFAIL
        except OSError as exc:
            log.critical("not starting: %s", exc)
            return exits.TEMPFAIL
        self.config = config
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        try:
            try:
                self.control = ControlServer(config.control.socket, Commands(self.runtime, config.mercadopago.api))
            except SocketTaken as exc:
                log.critical("not starting: %s", exc)
                notify(f"STATUS=Not started: {exc}")
                return exits.TEMPFAIL
            except SocketUnusable as exc:
                problem = cfg.ConfigError(config.path, "control.socket", str(exc))
                return _refuse(f"config invalid, not starting: {problem}", leds=self.runtime.devices.leds)
            self.runtime.start()
            self.control.start()
            notify("READY=1\nSTATUS=" + self._status_line())
            log.info("ready: POS %s on %s (%s API), control socket %s", config.mercadopago.external_pos_id,
                     config.mercadopago.site, config.mercadopago.api, config.control.socket)
            self._loop()
        finally:
            notify("STOPPING=1\nSTATUS=Stopping")
            self._shutdown()
        return exits.OK

    def _loop(self) -> None:
        interval = watchdog_interval()
        next_ping = 0.0
        runtime = self.runtime
        while not self.stopping:
            now = time.monotonic()
            if interval and now >= next_ping:
                notify("WATCHDOG=1")
                next_ping = now + interval
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
            runtime.step(min(IDLE_STEP, next_ping - now) if interval else IDLE_STEP)
            line = self._status_line()
            if line != self.status:
                self.status = line
                notify("STATUS=" + line)

    def _status_line(self) -> str:
        status, the_site = self.runtime.status, self.runtime.site
        if status.sale:
            sale = status.sale
            return f"Sale {sale.reference}: {sale.state}, {the_site.format(sale.total)}"
        if status.reconciling:
            return f"Reconciling {len(status.reconciling)} sale(s) from before the restart"
        parts = ["Ready" if status.online else "Offline: no QR sales until the API answers"]
        if not status.printer_ok:
            parts.append(f"printer problem, {len(status.print_queue)} receipt(s) queued")
        return "; ".join(parts)

    def _on_stop(self, signum, frame) -> None:
        self.stopping = True
        self.runtime.post(Tick())  # wake the loop

    def _on_reload(self, signum, frame) -> None:
        self.reload_requested = True
        self.runtime.post(Tick())

    def _reload(self) -> None:
        """SIGHUP: re-read the config and the catalog; a waiting sale carries on untouched."""
        notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            config = cfg.load(self.config_path)
            catalog = load_catalog(config.input.catalog, site(config.mercadopago.site))
        except (cfg.ConfigError, CatalogError) as exc:
            log.error("reload refused, keeping the running config: %s", exc)
        else:
            live = ("order_ttl", "poll_interval")
            if any(getattr(config.mercadopago, k) != getattr(self.config.mercadopago, k)
                   for k in vars(config.mercadopago) if k not in live):
                log.warning("reload: [mercadopago] changed beyond order_ttl/poll_interval; restart to apply it")
            self.runtime.post(Reconfigure(timing_of(config), catalog))
            self.runtime.shop = shop_of(config)
            for section in ("display", "printer", "leds", "input", "state", "control"):
                if getattr(config, section) != getattr(self.config, section):
                    log.warning("reload: [%s] changed; restart the service to apply it", section)
            self.config = config
            log.info("reloaded config and catalog (%d products)", len(catalog))
        notify("READY=1")

    def _shutdown(self) -> None:
        if self.control:
            self.control.close()
        if self.runtime:
            try:
                self.runtime.devices.leds.show(LedPattern.OFF)
            finally:
                self.runtime.stop()
        if self.lock:
            self.lock.release()
        log.info("stopped")


def _lock(config: cfg.Config) -> InstanceLock:
    """The state directory's lock. A directory that can never be (a file in its place or above it, no
    permission) is a config error: restarting would only fail again."""
    if problem := cfg.directory_problem(config.state.dir):
        raise cfg.ConfigError(config.path, "state.dir", problem)
    try:
        return InstanceLock(config.state.dir)
    except OSError as exc:
        if not lasting(exc):
            raise
        raise cfg.ConfigError(config.path, "state.dir", f"{config.state.dir}: {exc.strerror or exc}") from None


def _refuse(message: str, pins: cfg.LedsConfig | None = None, leds: Leds | None = None) -> int:
    """Log why the daemon will not start, tell systemd, light the fatal LED; exit ``CONFIG`` (no restart)."""
    log.critical("%s", message)
    notify(f"STATUS={message}")
    _show_fatal(pins, leds)
    return exits.CONFIG


def _show_fatal(pins: cfg.LedsConfig | None, leds: Leds | None = None) -> None:
    """Red solid for a moment on ``leds`` (else on ``pins``), so a person at the box sees why it will not start
    (the pins are released when the process exits, so the LED cannot outlive it); the journal and ``check``
    say the rest."""
    if leds is None:
        try:
            leds = Leds(pins.green, pins.yellow, pins.red, pins.buzzer)
        except Exception as exc:  # noqa: BLE001 - no LEDs must not hide the config error
            log.warning("cannot light the fatal LED: %s", exc)
            return
    leds.show(LedPattern.FATAL)
    time.sleep(FATAL_HOLD)
    leds.close()


def run(config_path: str) -> int:
    """Run the daemon until SIGTERM; return the exit code."""
    return Daemon(config_path).run()
