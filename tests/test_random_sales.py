"""A seeded random soak of the real daemon (``scripts/soak.py``): 200 sales on twelve daemons side by side, over
the in-store API in each merchant-order mode and the Orders API, with random buyers (in-review payments decided
late, payments after the cancel, two phones, partial and over payments), operator cancels, orders expiring on
Mercado Pago's side and kill -9 at random moments. Not one paid sale may be lost, no receipt printed twice as an
original, no sale put on the QR twice, and every approved cent must be on a paid sale's receipt or in review."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import soak  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_two_hundred_random_sales_with_kill9_lose_no_money(tmp_path):
    line, notes, problems = soak.soak(sales=200, seed=20261201, lanes=12, kill_chance=0.05, folder=tmp_path)
    assert problems == [], "\n".join([line, *notes, *problems])
    assert line.startswith("soak: 200 sales, ")
    assert ", 0 lost paid, 0 second originals, 0 double orders, 0 unaccounted approvals, " in line, line
    assert "kill -9 across 12 lanes" in notes[0] and not notes[0].startswith("0 ")  # the kills did happen
