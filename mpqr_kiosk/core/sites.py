"""Mercado Pago sites: currency, language and how money is written on the screen and at the API.

Money is always an ``int`` of minor units of the site's currency (centavos, or whole pesos for CLP and COP:
Mercado Pago wants COP as integers, mp_api.md §12.6). Each site has an upper bound for one sale, far above
any counter sale (Mercado Pago publishes none): a bigger amount at the keypad, in the catalog, on the control
socket or in an API answer is refused as a mistake, never charged or believed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Site:
    """One Mercado Pago site (country)."""

    id: str
    country: str  # ISO 3166 alpha-2, as in the EMVCo payload (tag 58)
    currency: str  # ISO 4217 alpha
    currency_numeric: str  # ISO 4217 numeric, as in the EMVCo payload (tag 53)
    decimals: int
    language: str  # "pt" or "es"
    symbol: str
    thousands: str
    decimal_mark: str
    space: bool  # a space between the symbol and the number
    max_amount: int  # the most one sale may come to, minor units

    def format(self, minor: int) -> str:
        """Write an amount the way people in this country read it: ``R$ 1.234,50``, ``S/ 1,234.50``."""
        sign = "-" if minor < 0 else ""
        units, cents = divmod(abs(minor), 10**self.decimals)
        whole = f"{units:,}".replace(",", self.thousands)
        number = f"{whole}{self.decimal_mark}{cents:0{self.decimals}d}" if self.decimals else whole
        return f"{sign}{self.symbol}{' ' if self.space else ''}{number}"

    def to_decimal(self, minor: int) -> Decimal:
        """The amount in major units, exactly (``1250`` centavos is ``Decimal("12.50")``)."""
        return Decimal(minor).scaleb(-self.decimals)

    def api_string(self, minor: int) -> str:
        """The Orders API's string amount: two decimals (BR demands them), whole numbers for CLP and COP."""
        return f"{self.to_decimal(minor):.{self.decimals}f}"

    def api_number(self, minor: int) -> float | int:
        """The in-store API's JSON number for an amount."""
        return int(minor) if self.decimals == 0 else float(self.to_decimal(minor))

    def from_api(self, value: str | float | int) -> int:
        """Minor units from an API amount (string or number); refuses fractions of a minor unit."""
        amount = Decimal(str(value)).scaleb(self.decimals)
        if amount != amount.to_integral_value():
            raise ValueError(f"amount {value!r} has more than {self.decimals} decimals for {self.currency}")
        return int(amount)

    def parse(self, text: str) -> int:
        """Minor units from an amount typed by a person or a script: ``12.50``, ``12,50``, ``1.234,50``.

        When both ``.`` and ``,`` appear, the last one is the decimal mark, whatever the site. A single mark
        followed by exactly three digits ("1.500") could be either, so it is refused rather than guessed.
        In a currency without decimals (CLP, COP) every mark must group thousands.
        """
        cleaned = text.strip().replace(" ", "")
        sign = -1 if cleaned.startswith("-") else 1
        cleaned = cleaned.removeprefix("-")
        if not re.fullmatch(r"[0-9]+([.,][0-9]+)*", cleaned):
            raise ValueError(f"not an amount: {text!r}")
        groups = re.split(r"[.,]", cleaned)
        if self.decimals == 0:
            if any(len(group) != 3 for group in groups[1:]):
                raise ValueError(f"{text!r} is not a whole amount of {self.currency}")
            return sign * int("".join(groups))
        if len(groups) > 2 and (len(groups[0]) > 3 or any(len(group) != 3 for group in groups[1:-1])):
            raise ValueError(f"{text!r} has its thousands grouped wrongly")
        if len(groups) == 2 and len(groups[1]) == 3:
            raise ValueError(f"ambiguous amount {text!r}: thousands or decimals? write it with both marks or neither")
        number = "".join(groups[:-1]) + "." + groups[-1] if len(groups) > 1 else groups[0]
        return sign * self.from_api(Decimal(number))


SITES: dict[str, Site] = {
    s.id: s
    for s in (
        Site("MLA", "AR", "ARS", "032", 2, "es", "$", ".", ",", True, 50_000_000_00),
        Site("MLB", "BR", "BRL", "986", 2, "pt", "R$", ".", ",", True, 250_000_00),
        Site("MLM", "MX", "MXN", "484", 2, "es", "$", ",", ".", False, 1_000_000_00),
        Site("MLC", "CL", "CLP", "152", 0, "es", "$", ".", ",", True, 50_000_000),
        Site("MCO", "CO", "COP", "170", 0, "es", "$", ".", ",", True, 200_000_000),
        Site("MPE", "PE", "PEN", "604", 2, "es", "S/", ",", ".", True, 200_000_00),
        Site("MLU", "UY", "UYU", "858", 2, "es", "$", ".", ",", True, 2_000_000_00),
    )
}


def site(site_id: str) -> Site:
    """The site for an id such as ``"MLA"``; ``KeyError`` names the valid ones."""
    try:
        return SITES[site_id.upper()]
    except KeyError:
        raise KeyError(f"unknown site {site_id!r}; one of {', '.join(SITES)}") from None
