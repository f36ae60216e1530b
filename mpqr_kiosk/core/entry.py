"""The operator's entry: the lines scanned so far, the amount being keyed and a pending ``N *`` multiplier;
on an empty entry, ``* * #`` asks for the day's closing ticket.

A value: every method returns a new ``Entry`` (``None`` where the key is refused), so a refused key or
sale can never leave half a change behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpqr_kiosk.core.model import Item

MAX_ENTRY_DIGITS = 9
REPORT_STARS = 2
KEYED_TITLE = {"pt": "Valor digitado", "es": "Importe"}


@dataclass(frozen=True)
class Entry:
    items: tuple[Item, ...] = ()
    amount: int = 0  # the amount being keyed, minor units
    quantity: int = 0  # a pending "N *" multiplier, 0 if none
    stars: int = 0  # "*" pressed on an empty entry: the start of "* * #"

    @property
    def empty(self) -> bool:
        return not (self.items or self.amount or self.quantity)

    @property
    def total(self) -> int:
        """What the scanned lines come to (the amount being keyed is not a line yet)."""
        return sum(item.amount for item in self.items)

    @property
    def report_asked(self) -> bool:
        """``* *`` on an empty entry: the next ``#`` prints the day's closing ticket."""
        return self.stars == REPORT_STARS and self.empty

    def digit(self, digit: int) -> Entry | None:
        if len(str(self.amount)) >= MAX_ENTRY_DIGITS:
            return None
        return replace(self, amount=self.amount * 10 + digit, stars=0)

    def multiply(self) -> Entry | None:
        """``N *``: the amount keyed so far becomes the quantity of the next line; on an empty entry, the
        start of ``* * #``."""
        if not self.amount:
            return replace(self, stars=self.stars + 1) if self.empty and self.stars < REPORT_STARS else None
        return replace(self, quantity=self.amount, amount=0)

    def delete(self) -> Entry:
        """Take back a digit, else the multiplier, else the last line."""
        if self.stars:
            return replace(self, stars=0)
        if self.amount:
            return replace(self, amount=self.amount // 10)
        if self.quantity:
            return replace(self, quantity=0)
        return replace(self, items=self.items[:-1])

    def add(self, item: Item) -> Entry:
        """A scanned product, times the pending multiplier."""
        if self.quantity:
            item = replace(item, quantity=self.quantity)
        return replace(self, items=(*self.items, item), quantity=0, stars=0)

    def lines(self, language: str, keyed: int) -> tuple[Item, ...]:
        """The sale's lines: the scanned ones, plus ``keyed`` (times the multiplier) as a line of its own."""
        if not keyed:
            return self.items
        title = KEYED_TITLE.get(language, KEYED_TITLE["es"])
        return (*self.items, Item(title, keyed, self.quantity or 1))

    def give_back(self, items: tuple[Item, ...]) -> Entry:
        """A refused sale's lines come back in front of whatever was keyed since."""
        return replace(self, items=(*items, *self.items))
