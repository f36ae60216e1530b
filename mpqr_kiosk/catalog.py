"""The product catalog: a CSV file mapping barcodes to items (config ``[input] catalog``).

Format: UTF-8 (a byte-order mark is fine), four columns ``code, title, unit price, sku``.

* An optional first row is the header; it must name exactly those columns in that order (case and
  surrounding spaces do not matter). A first row whose first cell is ``code`` is taken as a header.
* The separator is ``,``, or ``;`` when the first line holds more ``;`` than ``,`` (what spreadsheets
  in Brazil and Argentina write). Quote a price written ``"4,50"`` in a comma-separated file.
* ``code``: at most 64 printable characters, unique. ``title``: not empty, at most 80 printable
  characters (no tabs, line breaks or control bytes: they would reach the printer as commands). ``unit
  price``: in major units, ``4.50``, ``4,50`` or ``1.234,50`` (``Site.parse``), not negative, at most the
  site's bound for one sale. ``sku``: may be empty, at most 64 printable characters.
* Blank lines are skipped.

Any problem raises ``CatalogError`` naming the file, the line and what is wrong. Reloading is calling
``load_catalog`` again (the daemon does it on SIGHUP and keeps the old catalog if the new one is bad).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path

from mpqr_kiosk.core.model import Item
from mpqr_kiosk.core.sites import Site

COLUMNS = ("code", "title", "unit price", "sku")
MAX_CODE = 64
MAX_TITLE = 80  # a receipt line wraps; the screen cuts it: longer says nothing more


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file and line."""


class Catalog(Mapping[str, Item]):
    """Barcode → ``Item`` (quantity 1), as read from ``path``."""

    def __init__(self, items: Mapping[str, Item], path: str = "") -> None:
        self._items = dict(items)
        self.path = path

    def lookup(self, code: str) -> Item | None:
        """The item for a scanned code, or ``None`` when the code is unknown."""
        return self._items.get(code)

    def __getitem__(self, code: str) -> Item:
        return self._items[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def load_catalog(path: str | Path, site: Site) -> Catalog:
    """Read and check the whole catalog file; prices are converted to ``site``'s minor units."""
    name = str(path)
    text = _read_text(name)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    items: dict[str, Item] = {}
    first_seen: dict[str, int] = {}
    header_allowed = True
    try:
        ended = 0  # the line the previous record ended on: a quoted cell may span lines
        for row in reader:
            number, ended = ended + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            try:
                if header_allowed and row[0].strip().lower() == "code":
                    _check_header(row)
                else:
                    item = _item(row, site)
                    if item.code in first_seen:
                        raise ValueError(f"duplicate code {item.code!r} (first on line {first_seen[item.code]})")
                    first_seen[item.code] = number
                    items[item.code] = item
            except ValueError as exc:
                raise CatalogError(f"{name}, line {number}: {exc}") from None
            header_allowed = False
    except csv.Error as exc:
        raise CatalogError(f"{name}, line {reader.line_num}: bad CSV: {exc}") from None
    return Catalog(items, name)


def _read_text(name: str) -> str:
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise CatalogError(f"{name}: cannot read the catalog: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CatalogError(f"{name}, line {line}: not UTF-8 text") from None


def _check_header(row: list[str]) -> None:
    if tuple(cell.strip().lower() for cell in row) != COLUMNS:
        raise ValueError(f"the header must be exactly: {','.join(COLUMNS)} (got: {','.join(row)})")


def _item(row: list[str], site: Site) -> Item:
    if len(row) < len(COLUMNS):
        raise ValueError(f"missing column {COLUMNS[len(row)]!r} (expected: {','.join(COLUMNS)})")
    if len(row) > len(COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(COLUMNS)}: {','.join(COLUMNS)}")
    code, title, price_text, sku = (cell.strip() for cell in row)
    if not code:
        raise ValueError("empty code")
    if len(code) > MAX_CODE:
        raise ValueError(f"code longer than {MAX_CODE} characters")
    if not code.isprintable():
        raise ValueError(f"code {code!r} has non-printable characters")
    if not title:
        raise ValueError(f"empty title for code {code!r}")
    # what reaches the printer and the display is text: a control byte in a title would be an ESC/POS
    # command (a drawer kick, a cut, a reset), a newline would break the screen's layout
    if not title.isprintable():
        raise ValueError(f"the title of code {code!r} has control characters (tabs, line breaks or others)")
    if len(title) > MAX_TITLE:
        raise ValueError(f"the title of code {code!r} is longer than {MAX_TITLE} characters")
    if not sku.isprintable() or len(sku) > MAX_CODE:
        raise ValueError(f"the sku of code {code!r} must be at most {MAX_CODE} printable characters")
    try:
        price = site.parse(price_text)
    except ValueError as exc:
        raise ValueError(f"bad unit price {price_text!r} for code {code!r}: {exc}") from None
    if price < 0:
        raise ValueError(f"negative unit price {price_text!r} for code {code!r}")
    if price > site.max_amount:
        raise ValueError(f"unit price {price_text!r} for code {code!r} is more than {site.format(site.max_amount)}, "
                         "the most one sale may be")
    return Item(title=title, unit_price=price, quantity=1, sku=sku, code=code)
