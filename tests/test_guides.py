"""The guides in docs/: every picture they show exists and is what the code draws today (regenerate with
``scripts/guide-pictures``), and every committed picture is shown somewhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
GUIDES = [DOCS / "shop-guide.md", DOCS / "technician-guide.md"]


PICTURE = re.compile(r"!\[[^]]*\]\(([^)]+)\)")  # ![alt](path)


def shown() -> set[Path]:
    return {(DOCS / link).resolve() for guide in GUIDES for link in PICTURE.findall(guide.read_text())}


def test_every_picture_a_guide_shows_is_committed_and_used():
    pictures = {p.resolve() for p in (DOCS / "pictures").rglob("*.png")}
    assert shown() <= pictures, shown() - pictures
    unused = {p.name for p in pictures - shown()}
    assert unused == set(), f"committed but shown by no guide: {unused}"


def test_the_committed_pictures_are_what_the_code_draws_now(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts" / "guide-pictures"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.png")}
    committed = {p.relative_to(DOCS / "pictures"): p.read_bytes() for p in (DOCS / "pictures").rglob("*.png")}
    assert set(fresh) == set(committed)
    stale = sorted(str(name) for name in fresh if fresh[name] != committed[name])
    assert not stale, f"stale pictures (run scripts/guide-pictures and commit them): {stale}"
