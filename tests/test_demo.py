"""``mpqr-kiosk demo`` end to end: files written, the Pay frame scans to the POS's payload, the receipt is right."""

import re
import subprocess
import sys

import pytest
import zxingcpp
from PIL import Image

from mpqr_kiosk import demo, emvco
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.emulator.state import Emulator
from mpqr_kiosk.journal import Journal


@pytest.mark.parametrize("site_id", ["MLB", "MLA", "MLC"])
def test_demo_sale_end_to_end(tmp_path, site_id, capsys):
    out = tmp_path / "demo-out"
    assert demo.run(out, site_id) == 0
    story = capsys.readouterr().out
    assert "REJECTED" in story and "APPROVED" in story and "receipt printed once" in story

    frames = sorted((out / "frames").glob("*.png"))
    kinds = [re.sub(r"^\d+-", "", f.stem) for f in frames]
    for kind in ("ready", "entering", "pay", "customer_paying", "rejected", "paid"):
        assert kind in kinds
    # the scan shows nothing on the box (§12.1): the first payment attempt, rejected, does
    assert kinds.index("pay") < kinds.index("rejected") < kinds.index("customer_paying") < kinds.index("paid")

    pay_frame = frames[kinds.index("pay")]
    decoded = [code.text for code in zxingcpp.read_barcodes(Image.open(pay_frame).convert("L"))]
    expected = Emulator(site=site_id, user_id=demo.DEMO_USER).payload("POS001")
    assert decoded == [expected]
    emvco.verify(decoded[0])  # the CRC of what the customer scans is valid

    journal = Journal(out / "state")
    (sale,) = journal.recent()
    assert sale.state == "paid" and sale.receipt == "printed" and sale.rejected_payments == 1
    assert sale.paid_amount == sale.total
    data = (out / "receipt.bin").read_bytes()
    text = data.decode("cp860" if site_id == "MLB" else "cp850", errors="replace")
    assert site(site_id).format(sale.total) in text
    assert sale.payment_id in text and sale.reference in text
    assert data.count(b"\x1dV") == 1  # one receipt, one cut
    assert Image.open(out / "receipt.png").size[0] >= 384


def test_demo_command_exits_zero(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mpqr_kiosk", "demo", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "receipt.bin").stat().st_size > 100
