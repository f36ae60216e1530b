"""``scripts/fuzz``: a short seeded bad-input campaign over every family finds no crash, hang or amount change;
and the detector is not blind: a decoder made to crash, or to type a digit nobody typed, is counted and its input
written as a reproducer."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import fuzz  # noqa: E402

from mpqr_kiosk.core.events import Key  # noqa: E402
from mpqr_kiosk.devices.input import serial_source, stdin_source  # noqa: E402


@pytest.mark.timeout(300)
def test_a_short_seeded_campaign_ends_with_zero_counts(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(SCRIPTS / "fuzz.py"), "--seed", "1", "--per-family", "40",
                          "--out", str(out)], capture_output=True, text=True, timeout=280)
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == "fuzz: 240 inputs, 0 crashes, 0 hangs, 0 amount changes", run.stdout + run.stderr[-3000:]
    assert run.returncode == 0
    assert not out.exists()
    families = {line.split(":")[0]: line for line in lines if line.startswith("fuzz ")}
    assert "check exit 0" in families["fuzz config"] and "check exit 3" in families["fuzz config"]
    assert "sales started" in families["fuzz control"]
    api = families["fuzz api"]  # mutated answers reached the daemon, and sales still got paid and watched out
    assert "mutated answers served" in api and "sales paid" in api and "ended sales watched out" in api, api


def test_the_same_seed_gives_the_same_inputs():
    rig_base = ('[mercadopago]\nsite = "MLB"\nuser_id = 1\npoll_interval = "1s"\n[shop]\nname = "Bench"\n'
                '[input]\ndevices = ["stdin"]\ncatalog = "c.csv"\n[display]\nwidth = 128\n[state]\ndir = "s"\n')
    first = [fuzz.config_input(rig_base, fuzz.Campaign(7, Path()).rng("config", i)) for i in range(20)]
    again = [fuzz.config_input(rig_base, fuzz.Campaign(7, Path()).rng("config", i)) for i in range(20)]
    other = [fuzz.config_input(rig_base, fuzz.Campaign(8, Path()).rng("config", i)) for i in range(20)]
    assert first == again and first != other


def test_a_planted_crash_and_a_planted_amount_change_are_counted_with_reproducers(tmp_path, monkeypatch):
    real_feed, real_parse = serial_source.LineDecoder.feed, stdin_source.parse_line

    def crashing_feed(self, data):
        if b"\xff" in data or b"\x00" in data:
            raise RuntimeError("planted")
        return real_feed(self, data)

    def typing_parse(line):  # a refused line also types a 9
        values = real_parse(line)
        return values + [Key("9")] if any(isinstance(v, fuzz.Refused) for v in values) else values

    monkeypatch.setattr(serial_source.LineDecoder, "feed", crashing_feed)
    monkeypatch.setattr(stdin_source, "parse_line", typing_parse)
    campaign = fuzz.campaign_run(1, 40, ["scanner"], tmp_path, lambda line: None)
    assert campaign.count("crash") >= 1 and campaign.count("amount") >= 1, campaign.summary()
    assert campaign.summary() == (f"fuzz: 40 inputs, {campaign.count('crash')} crashes, 0 hangs, "
                                  f"{campaign.count('amount')} amount changes")
    crash = next(f for f in campaign.findings if f.kind == "crash")
    assert "RuntimeError: planted" in crash.what
    note = (tmp_path / f"scanner-1-{crash.index:05d}.txt").read_text()
    assert "family: scanner\nseed: 1\n" in note and f"index: {crash.index}\n" in note and "planted" in note
    assert (tmp_path / f"scanner-1-{crash.index:05d}.bin").read_bytes().startswith(b"serial\n")
    amount = next(f for f in campaign.findings if f.kind == "amount")
    assert amount.what.startswith("stdin: the entry came to")


def test_an_approval_left_on_a_cancelled_sale_after_its_watch_is_counted(tmp_path, monkeypatch):
    """Rule 9: a cancelled sale whose late watch is over while the emulator holds an approved payment for it
    is an amount change; one still watched is not judged yet, and one never watched out in time is a hang."""
    from mpqr_kiosk.core.model import Sale, SaleState

    sales = {"R-LOST": Sale("R-LOST", "k1", "MLB", (), 450, 0.0, state=SaleState.CANCELLED),
             "R-WATCHED": Sale("R-WATCHED", "k2", "MLB", (), 450, 0.0, state=SaleState.CANCELLED, watch_until=9e9),
             "R-CLEAN": Sale("R-CLEAN", "k3", "MLB", (), 450, 0.0, state=SaleState.EXPIRED)}
    monkeypatch.setattr(fuzz, "approved_truth", lambda emulator, ref: 0 if ref == "R-CLEAN" else 450)
    rig = type("Rig", (), {"emulator": None, "journaled": lambda self, ref: sales[ref]})()
    campaign = fuzz.Campaign(1, tmp_path)
    ended = {ref: (n, b"input") for n, ref in enumerate(sales)}
    fuzz.unaccounted(campaign, rig, ended, wait=0.0)
    assert [(f.kind, f.index) for f in campaign.findings] == [("amount", 0)]
    assert "R-LOST ended cancelled and its watch is over, but the emulator approved 450 of 450" in \
        campaign.findings[0].what
    assert list(ended) == ["R-WATCHED"]
    fuzz.unaccounted(campaign, rig, ended, wait=0.3)
    assert [(f.kind, f.index) for f in campaign.findings] == [("amount", 0), ("hang", 1)]
    assert (tmp_path / "api-1-00000.txt").read_text().count("kind: amount") == 1
