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
    assert "sales started" in run.stdout and "mutated answers served" in run.stdout  # the daemon families did reach it


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
