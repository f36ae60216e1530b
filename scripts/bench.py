"""Benchmark the real daemon (``mpqr-kiosk run`` as a subprocess) against the emulator on loopback.

Prints one table: payment detection latency, the daemon's own overhead, keypress-to-frame time, memory,
start-up time, idle CPU and wake-ups, and the API request rate while a sale waits. Run it through
``scripts/bench`` (which bootstraps the venv). Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import wait, write_config

from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.emulator.server import EmulatorServer
from mpqr_kiosk.emulator.state import Emulator

HZ = os.sysconf("SC_CLK_TCK")


class Daemon(harness.Daemon):
    """The daemon, and what the benchmark reads off it in ``/proc``."""

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ

    def switches(self) -> int:
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        return total


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one_sale(daemon: Daemon, emulator: Emulator, printer: LoopbackPrinter) -> tuple[float, float]:
    """A sale paid at a random point between polls: (approval → first receipt byte, read → first byte)."""
    reference = daemon.control("sale", amount="1.00")["reference"]
    wait(lambda: emulator.snapshot()["pos"][0]["order"], 10, "the order on the POS")
    printed = len(printer.first_bytes)
    emulator.requests(clear=True)
    approved = time.time()
    emulator.pay("POS001", "approved")
    wait(lambda: len(printer.first_bytes) > printed, 30, f"the receipt of {reference}")
    first_byte = printer.first_bytes[printed]
    # the read that saw the payment: the last one answered before the receipt's first byte
    detected = max((r["t"] for r in emulator.requests() if "merchant_orders" in r["path"] and r["t"] <= first_byte),
                   default=approved)
    wait(lambda: daemon.control("status")["sale"] is None, 10, "the sale to end")
    return first_byte - approved, first_byte - detected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sales", type=int, default=500, help="sales for the memory growth figure")
    parser.add_argument("--latency-sales", type=int, default=30, help="sales timed at the default 1 s poll")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="mpqr-bench-") as tmp:
        emulator = Emulator(site="MLB", user_id=123456789)
        with EmulatorServer(emulator) as server:
            printer = LoopbackPrinter().up()
            folder = Path(tmp)
            daemon = Daemon(folder, write_config(folder, emulator, server.url, printer, poll="1s"))
            rows.append(("start to READY", f"{daemon.notify.ready_at - daemon.started:.2f} s", "-"))
            time.sleep(2)
            rss_ready = daemon.rss_mb()
            rows.append(("RSS at READY", f"{rss_ready:.1f} MB", "<= 60 MB"))

            cpu0, sw0, t0 = daemon.cpu_seconds(), daemon.switches(), time.time()
            time.sleep(args.idle)
            elapsed = time.time() - t0
            rows.append(("idle CPU", f"{100 * (daemon.cpu_seconds() - cpu0) / elapsed:.2f} %", "<= 1 %"))
            rows.append(("idle wake-ups", f"{(daemon.switches() - sw0) / elapsed:.1f} /s", "-"))

            frames = folder / "frames"
            delays = []
            for digit in "1D" * 15:  # each key changes the screen: a digit, then delete it
                before = len(list(frames.iterdir()))
                sent = time.time()
                daemon.key(digit)
                wait(lambda before=before: len(list(frames.iterdir())) > before, 5, "a frame")
                newest = max(frames.iterdir(), key=lambda p: p.stat().st_mtime_ns)
                delays.append(newest.stat().st_mtime_ns / 1e9 - sent)
            daemon.key("C")
            rows.append(("keypress to frame p95", f"{1000 * percentile(delays, 95):.1f} ms", "-"))

            reference = daemon.control("sale", amount="1.00")["reference"]
            wait(lambda: emulator.snapshot()["pos"][0]["order"], 10, "the order")
            emulator.requests(clear=True)
            time.sleep(30)
            rate = len(emulator.requests()) * 2
            rows.append(("API requests/min while waiting", f"{rate}", "bounded (poll 1 s: <= 62)"))
            daemon.control("cancel")
            wait(lambda: daemon.control("status")["sale"] is None, 20, f"{reference} to cancel")

            timings = [one_sale(daemon, emulator, printer) for _ in range(args.latency_sales)]
            detection = [t[0] for t in timings]
            overhead = [t[1] for t in timings]
            median = statistics.median(detection)
            rows.append(("detection p50 (approval to 1st receipt byte)", f"{1000 * median:.0f} ms", "-"))
            rows.append(("detection p95", f"{1000 * percentile(detection, 95):.0f} ms", "<= poll + 200 ms = 1200 ms"))
            rows.append(("own overhead p50 (read to 1st byte)", f"{1000 * statistics.median(overhead):.1f} ms", "-"))
            rows.append(("own overhead p95", f"{1000 * percentile(overhead, 95):.1f} ms", "<= 50 ms"))
            daemon.stop()

            fast = Daemon(folder, write_config(folder, emulator, server.url, printer, poll="100ms"))
            for _ in range(20):  # warm-up: caches, lazy imports
                one_sale(fast, emulator, printer)
            warm = fast.rss_mb()
            for _ in range(args.sales):
                one_sale(fast, emulator, printer)
            rows.append((f"RSS growth over {args.sales} sales", f"{fast.rss_mb() - warm:+.2f} MB", "<= 2 MB"))
            fast.stop()
    width = max(len(r[0]) for r in rows)
    sys.stdout.write(f"{'measure':<{width}}  {'value':>12}  target\n")
    for name, value, target in rows:
        sys.stdout.write(f"{name:<{width}}  {value:>12}  {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
