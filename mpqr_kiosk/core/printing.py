"""The receipts to print, one at a time (rule 5: an original at most once; a print cut short comes back as
a COPY). A value: each method returns the new queue and what changed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.model import ReceiptState, Sale, SaleState


@dataclass(frozen=True)
class Job:
    sale: Sale  # as journaled: receipt PRINTING for an original
    copy: bool


@dataclass(frozen=True)
class PrintQueue:
    waiting: tuple[Sale, ...] = ()
    printing: Job | None = None
    printer_ok: bool = True
    retry_at: float = 0.0  # monotonic; when a failed printer is tried again

    @property
    def references(self) -> tuple[str, ...]:
        """Every receipt not printed yet, the one at the printer first."""
        return ((self.printing.sale.reference,) if self.printing else ()) + tuple(s.reference for s in self.waiting)

    def add(self, sale: Sale) -> PrintQueue:
        return replace(self, waiting=(*self.waiting, sale))

    def wakeup(self) -> float | None:
        if self.printing or not self.waiting:
            return None
        return 0.0 if self.printer_ok else self.retry_at

    def start(self, now: float) -> tuple[PrintQueue, Job | None]:
        """The next receipt to print now, if the printer is free (and not waiting out a failure)."""
        if self.printing or not self.waiting or not (self.printer_ok or now >= self.retry_at):
            return self, None
        sale, rest = self.waiting[0], self.waiting[1:]
        copy = sale.receipt is not ReceiptState.NONE  # an original may have started: never a second original
        job = Job(sale if copy else replace(sale, receipt=ReceiptState.PRINTING), copy)
        return replace(self, waiting=rest, printing=job), job

    def printed(self, reference: str) -> tuple[PrintQueue, Sale | None]:
        """The receipt at the printer came out: its sale as it is now to be journaled (``None``: stale)."""
        job = self.printing
        if job is None or job.sale.reference != reference:
            return self, None
        sale = replace(job.sale, receipt=ReceiptState.PRINTED, copies=job.sale.copies + job.copy)
        return replace(self, printing=None, printer_ok=True), sale

    def failed(self, reference: str, started: bool, retry_at: float) -> tuple[PrintQueue, Job | None]:
        """The receipt at the printer failed: it goes back to the front. Returns the failed job (``None``:
        stale) with the sale as it is now; an original that never started is still due as an original."""
        job = self.printing
        if job is None or job.sale.reference != reference:
            return self, None
        sale = job.sale
        if not started and not job.copy:
            sale = replace(sale, receipt=ReceiptState.NONE)
        again = (sale,) if sale.state is SaleState.PAID else ()  # refunded meanwhile: nothing more to print
        queue = replace(self, waiting=(*again, *self.waiting), printing=None, printer_ok=False, retry_at=retry_at)
        return queue, replace(job, sale=sale)

    def refunded(self, reference: str) -> PrintQueue:
        """A refunded sale prints nothing more; one at the printer is journaled as refunded when it is done."""
        printing = self.printing
        if printing and printing.sale.reference == reference:
            printing = replace(printing, sale=replace(printing.sale, state=SaleState.REFUNDED))
        return replace(self, waiting=tuple(s for s in self.waiting if s.reference != reference), printing=printing)
