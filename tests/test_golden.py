"""Golden images: the key screens, drawn on luma.core's dummy device, must match the reviewed PNGs in
tests/golden/ pixel for pixel. After an intended change, look at the new frames and regenerate with
``MPQR_UPDATE_GOLDEN=1 ./scripts/test tests/test_golden.py``."""

import os
from pathlib import Path

import pytest
import zxingcpp
from luma.core.device import dummy
from PIL import Image, ImageChops

from mpqr_kiosk import emvco
from mpqr_kiosk.core.model import Item, Screen, ScreenKind
from mpqr_kiosk.core.sites import site
from mpqr_kiosk.screens import render

GOLDEN = Path(__file__).parent / "golden"
PAYLOAD = emvco.build_static(1043915, site("MLA"), "Almacen Don Jose", "BUENOS AIRES")
ITEMS = (Item("Pão de queijo", 450, 2, "P1", "7891000100103"), Item("Café", 600))
CASES = {
    "ready": Screen(ScreenKind.READY),
    "entering": Screen(ScreenKind.ENTERING, ITEMS, 1500, entry=1250),
    "pay": Screen(ScreenKind.PAY, ITEMS, 1500, seconds_left=583, reference="POS001-1"),
    "customer_paying": Screen(ScreenKind.CUSTOMER_PAYING, ITEMS, 1500, seconds_left=541),
    "rejected": Screen(ScreenKind.REJECTED, ITEMS, 1500, seconds_left=512),
    "paid": Screen(ScreenKind.PAID, ITEMS, 1500),
    "offline": Screen(ScreenKind.OFFLINE),
}


def frame(name: str, site_id: str, size: tuple[int, int]) -> Image.Image:
    device = dummy(width=size[0], height=size[1], mode="1")
    device.display(render(CASES[name], site(site_id), size, device.mode, PAYLOAD))
    return device.image


@pytest.mark.parametrize("size", [(128, 128), (128, 64)], ids=["128x128", "128x64"])
@pytest.mark.parametrize("site_id", ["MLB", "MLA"])
@pytest.mark.parametrize("name", list(CASES))
def test_screen_matches_its_golden_image(name, site_id, size):
    image = frame(name, site_id, size)
    path = GOLDEN / f"{name}-{site_id}-{size[0]}x{size[1]}.png"
    if os.environ.get("MPQR_UPDATE_GOLDEN"):
        image.save(path)
    golden = Image.open(path).convert(image.mode)
    difference = ImageChops.difference(image, golden).getbbox()
    assert difference is None, f"{path.name} differs in {difference}; see the module docstring to regenerate"


@pytest.mark.parametrize("size", [(128, 128), (128, 64)], ids=["128x128", "128x64"])
def test_golden_pay_frames_still_scan(size):
    golden = Image.open(GOLDEN / f"pay-MLA-{size[0]}x{size[1]}.png").convert("L")
    assert [code.text for code in zxingcpp.read_barcodes(golden)] == [PAYLOAD]
