"""``scripts/install.sh`` into a temporary ``--root``: every file, owner and mode, re-runs that keep a
technician's edits, an upgrade that waits for the live sale, migrates the journal and switches back on a
failed start, and uninstall. systemd does not run as PID 1 here, so a stand-in ``systemctl`` (passed
with ``MPQR_SYSTEMCTL``) plays the service; enabling the unit is real ``systemctl --root``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from mpqr_kiosk.emulator.printer import LoopbackPrinter
from mpqr_kiosk.journal import FILE_NAME, MIGRATIONS
from tests.daemon_harness import Daemon

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "scripts" / "install.sh"
TOKEN = "TEST-1234567890-installer-secret"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("install"),  # one worker builds the virtualenvs once, for the whole module
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("systemd-sysusers")
                       or not Path("/usr/bin/python3.11").exists(),
                       reason="the installer needs root, systemd-sysusers and Bookworm's /usr/bin/python3.11"),
]

FAKE_SYSTEMCTL = """#!/bin/bash
# systemd as PID 1, as far as install.sh can tell: a service that is active or not, and whose start runs
# the current virtualenv (and fails for the version in $FAIL_VERSION). Enabling goes to the real systemctl.
echo "$*" >>"$FAKE_DIR/calls"
case $1 in
  is-active) [[ $(cat "$FAKE_DIR/state" 2>/dev/null) == active ]] ;;
  stop) echo inactive >"$FAKE_DIR/state" ;;
  start|restart)
    cd / && if "$FAKE_ROOT/opt/mpqr-kiosk/current/bin/python" -c \\
        'import sys, mpqr_kiosk; sys.exit(mpqr_kiosk.__version__ == sys.argv[1])' "${FAIL_VERSION:-}"; then
      echo active >"$FAKE_DIR/state"
    else
      echo failed >"$FAKE_DIR/state"; exit 1
    fi ;;
  daemon-reload) ;;
  *) exec systemctl --root="$FAKE_ROOT" "$@" ;;
esac
"""


def run(root: Path, *args: str, src: Path = REPO, stdin: str = "", env: dict | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")  # --root uses none by itself
    return subprocess.run(["bash", str(src / "scripts" / "install.sh"), "--root", str(root), *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PIP_CACHE_DIR": cache, **(env or {})})


def tree(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every path outside the virtualenvs: (type and mode, uid, gid, content digest or link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if "/venvs/" in rel or rel.startswith("etc/.pwd") or rel.startswith("var/lib/mpqr-kiosk/sales"):
            continue
        st = path.lstat()
        what = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else b""
        found[rel] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, str(what)[:80])
    return found


def ids(root: Path, name: str = "mpqr-kiosk") -> tuple[int, int]:
    uid = next(int(line.split(":")[2]) for line in (root / "etc/passwd").read_text().splitlines()
               if line.startswith(name + ":"))
    gid = next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()
               if line.startswith(name + ":"))
    return uid, gid


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A first install into an empty tree, the token pasted on standard input."""
    root = tmp_path_factory.mktemp("root")
    done = run(root, "--token-file", "-", stdin=TOKEN + "\n")
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return root


def release(tmp_path_factory, version: str) -> Path:
    """This checkout as another release."""
    src = tmp_path_factory.mktemp("checkout") / "mpqr-kiosk"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv*", "demo-out", "preview-out",
                                                             "__pycache__", "*.egg-info", "build", ".*_cache"))
    init = src / "mpqr_kiosk" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', f'__version__ = "{version}"'))
    return src


@pytest.fixture(scope="module")
def newer_checkout(tmp_path_factory) -> Path:
    return release(tmp_path_factory, "0.1.1")


@pytest.fixture
def printer():
    fake = LoopbackPrinter().up()
    yield fake
    fake.down()


def copy_of(installed: Path, tmp_path: Path) -> Path:
    """Another box with the same install (the venvs name /opt/mpqr-kiosk, so the tree moves as a whole)."""
    root = tmp_path / "box"
    subprocess.run(["cp", "-a", str(installed), str(root)], check=True)  # owners too
    return root


def test_first_install_lays_out_every_file_with_its_owner_and_mode(installed):
    uid, gid = ids(installed)
    assert uid < 1000 and gid < 1000  # a system user
    assert "/usr/sbin/nologin" in (installed / "etc/passwd").read_text()
    for group in ("input", "dialout", "lp", "gpio", "i2c", "spi"):
        members = next(line for line in (installed / "etc/group").read_text().splitlines()
                       if line.startswith(group + ":"))
        assert members.endswith(":mpqr-kiosk"), members
    t = tree(installed)
    expect = {
        "etc/mpqr-kiosk": ("drwxr-x---", 0, gid),
        "etc/mpqr-kiosk/kiosk.toml": ("-rw-r-----", 0, gid),
        "etc/mpqr-kiosk/catalog.csv": ("-rw-r-----", 0, gid),
        "etc/mpqr-kiosk/access_token": ("-rw-------", 0, 0),
        "etc/systemd/system/mpqr-kiosk.service": ("-rw-r--r--", 0, 0),
        "etc/udev/rules.d/99-mpqr-kiosk.rules": ("-rw-r--r--", 0, 0),
        "usr/lib/sysusers.d/mpqr-kiosk.conf": ("-rw-r--r--", 0, 0),
        "var/lib/mpqr-kiosk": ("drwxr-x---", uid, gid),
        "opt/mpqr-kiosk/README.md": ("-rw-r--r--", 0, 0),
    }
    for path, (mode, owner, group) in expect.items():
        assert t[path][:3] == (mode, owner, group), path
    assert (installed / "etc/mpqr-kiosk/kiosk.toml").read_bytes() == (REPO / "config/kiosk.toml").read_bytes()
    assert (installed / "etc/mpqr-kiosk/access_token").read_text() == TOKEN + "\n"
    # the unit is enabled the way systemctl enable does it, and starts the linked virtualenv
    wants = installed / "etc/systemd/system/multi-user.target.wants/mpqr-kiosk.service"
    assert os.readlink(wants) == "/etc/systemd/system/mpqr-kiosk.service"
    unit = (installed / "etc/systemd/system/mpqr-kiosk.service").read_text()
    assert "ExecStart=/opt/mpqr-kiosk/bin/mpqr-kiosk --config /etc/mpqr-kiosk/kiosk.toml run" in unit
    assert os.readlink(installed / "usr/local/bin/mpqr-kiosk") == "/opt/mpqr-kiosk/bin/mpqr-kiosk"
    assert os.readlink(installed / "opt/mpqr-kiosk/bin") == "current/bin"
    current = os.readlink(installed / "opt/mpqr-kiosk/current")
    assert current.startswith("venvs/0.1.0-")
    venv = installed / "opt/mpqr-kiosk" / current
    # scripts name the path the tree will have once copied to /, not the build directory
    assert (venv / "bin/mpqr-kiosk").read_text().splitlines()[0] == f"#!/opt/mpqr-kiosk/{current}/bin/python"
    assert str(installed) not in (venv / "bin/mpqr-kiosk").read_text()
    done = subprocess.run([str(venv / "bin/python"), "-m", "mpqr_kiosk", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "mpqr-kiosk 0.1.0"


def normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_the_virtualenv_holds_exactly_the_locked_versions(installed):
    venv = installed / "opt/mpqr-kiosk/current"
    frozen = subprocess.run([str(venv / "bin/python"), "-m", "pip", "freeze", "--all", "--exclude", "mpqr-kiosk"],
                            capture_output=True, text=True, timeout=120).stdout
    have = {normal(line.split("==")[0]): line.split("==")[1] for line in frozen.splitlines()}
    pins = {}
    for name in ("runtime.txt", "systemd.txt", "build.txt"):
        for line in (REPO / "requirements" / name).read_text().splitlines():
            if line[:1].isalpha():
                spec, _, marker = line.rstrip(" \\").partition(" ; ")
                if "win32" in marker or ("aarch64" in marker and os.uname().machine != "aarch64"):
                    continue
                package, version = spec.split("==")
                pins[normal(package)] = version
    if "systemd-python" not in have:  # built only where libsystemd-dev is installed
        pins.pop("systemd-python")
    assert have == pins


def test_a_second_run_changes_nothing_a_technician_edited(installed, tmp_path):
    root = copy_of(installed, tmp_path)
    edits = {
        "etc/mpqr-kiosk/kiosk.toml": b'[mercadopago]\nsite = "MLB"\n# edited on site\n',
        "etc/mpqr-kiosk/catalog.csv": b"code,title,unit price\n1,Cafe,3.00\n",
        "etc/udev/rules.d/99-mpqr-kiosk.rules": b'SUBSYSTEM=="usb", ATTRS{idVendor}=="1fc9", GROUP="lp"\n',
    }
    for path, content in edits.items():
        (root / path).write_bytes(content)
    (root / "etc/mpqr-kiosk/kiosk.toml").chmod(0o600)
    before = tree(root)
    done = run(root, stdin="")
    assert done.returncode == 0, done.stderr
    assert tree(root) == before
    assert "kept" in done.stderr and "building" not in done.stderr  # the same virtualenv, not rebuilt
    # a new token replaces the old one, read from a file, never shown
    token_file = tmp_path / "token"
    token_file.write_text("APP_USR-new-token-0987654321\r\n")
    done = run(root, "--token-file", str(token_file))
    assert done.returncode == 0 and "APP_USR-new" not in done.stderr + done.stdout
    assert (root / "etc/mpqr-kiosk/access_token").read_text() == "APP_USR-new-token-0987654321\n"
    assert stat.filemode((root / "etc/mpqr-kiosk/access_token").stat().st_mode) == "-rw-------"


def test_the_token_never_shows_even_traced(installed, tmp_path):
    root = copy_of(installed, tmp_path)
    secret = "APP_USR-traced-5550001112223334"
    done = run(root, "--token-file", "-", stdin=secret + "\n", env={"SHELLOPTS": "xtrace"})
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    assert (root / "etc/mpqr-kiosk/access_token").read_text() == secret + "\n"


def test_a_token_with_spaces_is_refused_and_nothing_is_stored(installed, tmp_path):
    root = copy_of(installed, tmp_path)
    done = run(root, "--token-file", "-", stdin="Bearer APP_USR-123456789\n")
    assert done.returncode == 1
    assert "spaces or control characters" in done.stderr and "APP_USR-123456789" not in done.stderr
    assert (root / "etc/mpqr-kiosk/access_token").read_text() == TOKEN + "\n"


def test_wrong_os_machine_and_python_are_plain_errors(tmp_path):
    other = tmp_path / "os-release"
    other.write_text('ID=ubuntu\nVERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04 LTS"\n')
    cases = [
        ({"MPQR_OS_RELEASE": str(other)},
         "installs on Raspberry Pi OS Bookworm or Debian 12; this machine runs Ubuntu 24.04 LTS"),
        ({"MPQR_MACHINE": "armv7l"},
         "32-bit Raspberry Pi OS is not supported: install Raspberry Pi OS Bookworm 64-bit"),
        ({"MPQR_PYTHON": "/usr/bin/python3.9"}, "Python 3.11 is required at /usr/bin/python3.9"),
    ]
    for env, message in cases:
        done = run(tmp_path / "root", env=env)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "root" / "opt").exists()
    manual = tmp_path / "manual"
    (manual / "opt/mpqr-kiosk/.git").mkdir(parents=True)  # the README's old hand-made install
    done = run(manual)
    assert done.returncode == 1 and "/opt/mpqr-kiosk holds a manual install (a git checkout)" in done.stderr
    assert sorted(p.name for p in (manual / "opt/mpqr-kiosk").iterdir()) == [".git"]


def test_no_package_index_is_a_plain_error_and_changes_nothing(tmp_path, newer_checkout, installed):
    root = copy_of(installed, tmp_path)
    before = tree(root)
    done = run(root, src=newer_checkout, env={"PIP_INDEX_URL": "http://127.0.0.1:9/simple"})
    assert done.returncode == 1
    assert "cannot reach the package index http://127.0.0.1:9/simple" in done.stderr
    assert tree(root) == before
    current = os.readlink(root / "opt/mpqr-kiosk/current")
    assert [p.name for p in (root / "opt/mpqr-kiosk/venvs").iterdir()] == [current.removeprefix("venvs/")]


def old_journal(state: Path, owner: tuple[int, int] = (0, 0)) -> None:
    """A journal of the first schema with one paid sale and its history, as 0.0.x wrote it, owned by
    the daemon's user."""
    db = sqlite3.connect(state / FILE_NAME)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO sales (reference, idempotency_key, site, items, total, created_at, state, order_id,"
               " payment_id, paid_amount, receipt, copies, updated_at) VALUES ('mpqr-old-1', 'k1', 'MLB', '[]',"
               " 2150, 1.0, 'paid', 'o1', 'p1', 2150, 'printed', 0, 2.0)")
    db.execute("INSERT INTO history (reference, at, state, receipt) VALUES ('mpqr-old-1', 2.0, 'paid', 'printed')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    os.chown(state / FILE_NAME, *owner)


def schema(state: Path) -> tuple[int, list]:
    db = sqlite3.connect(state / FILE_NAME)
    try:
        return (db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT reference, state, total, payment_id, receipt FROM sales").fetchall())
    finally:
        db.close()


def booted(root: Path, fake: Path, state: str) -> dict:
    """Make ``root`` a tree systemd runs, with the service ``state``; the installer's environment."""
    (root / "run/systemd/system").mkdir(parents=True)
    fake.mkdir()
    (fake / "systemctl").write_text(FAKE_SYSTEMCTL)
    (fake / "systemctl").chmod(0o755)
    (fake / "state").write_text(state + "\n")
    (fake / "calls").write_text("")
    return {"MPQR_SYSTEMCTL": str(fake / "systemctl"), "FAKE_DIR": str(fake), "FAKE_ROOT": str(root),
            "MPQR_START_SETTLE": "0"}


def test_a_first_install_starts_the_service_only_once_the_pos_has_its_qr(installed, tmp_path):
    root = copy_of(installed, tmp_path)
    fake = tmp_path / "fake"
    env = booted(root, fake, "inactive")
    for link in ("opt/mpqr-kiosk/current", "opt/mpqr-kiosk/bin"):
        (root / link).unlink()  # as before the first switch (the built virtualenv is reused)
    done = run(root, env=env)
    assert done.returncode == 0, done.stderr
    assert "not started yet: the POS has no qr_payload" in done.stderr
    assert "start" not in (fake / "calls").read_text().split()
    toml = root / "etc/mpqr-kiosk/kiosk.toml"
    toml.write_text(toml.read_text().replace('qr_payload = ""', 'qr_payload = "00020101021243650016COM.MERCADOLIBRE"'))
    (root / "opt/mpqr-kiosk/current").unlink()
    done = run(root, env=env)
    assert done.returncode == 0, done.stderr
    assert "start mpqr-kiosk.service" in (fake / "calls").read_text().splitlines()
    assert (fake / "state").read_text().strip() == "active"


def test_the_unit_sandbox_exposure_stays_at_or_below_2(installed):
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                           str(installed / "etc/systemd/system/mpqr-kiosk.service")],
                          capture_output=True, text=True, timeout=60)
    exposure = float(done.stdout.rsplit("Overall exposure level for mpqr-kiosk.service:", 1)[1].split()[0])
    assert exposure <= 2.0, done.stdout[-2000:]


def owners(state: Path) -> set[tuple[int, int]]:
    return {(p.stat().st_uid, p.stat().st_gid) for p in state.iterdir() if p.name.startswith("sales.sqlite3")}


def test_upgrade_waits_for_the_live_sale_rolls_back_a_failed_start_and_keeps_the_journal(
        installed, newer_checkout, tmp_path, emulator, printer):
    root = copy_of(installed, tmp_path)
    fake = tmp_path / "fake"
    env = booted(root, fake, "active")
    state = root / "var/lib/mpqr-kiosk"
    daemon_user = ids(root)
    old_journal(state, daemon_user)
    old = os.readlink(root / "opt/mpqr-kiosk/current")
    (tmp_path / "daemon").mkdir()
    daemon = Daemon(tmp_path / "daemon", emulator, printer)
    shutil.copy(daemon.config, root / "etc/mpqr-kiosk/kiosk.toml")  # the status the installer asks for
    try:
        # 0. The service is up but its daemon does not answer: that is not "idle".
        done = run(root, "--wait", "3", src=newer_checkout, env=env)
        assert done.returncode == 75, done.stderr
        assert "waiting for the daemon's answer (it does not say whether a sale is live)" in done.stderr
        assert "no answer from the daemon on its sales after 3s: nothing was restarted" in done.stderr
        assert os.readlink(root / "opt/mpqr-kiosk/current") == old

        # 1. A sale is live: the installer builds, waits, gives up, restarts nothing.
        daemon.start()
        reference = daemon.sale("21.50")
        assert daemon.until(lambda: daemon.state_of(reference) == "waiting")
        done = run(root, "--wait", "4", src=newer_checkout, env=env)
        assert done.returncode == 75, done.stderr
        assert f"waiting for the sale {reference} before restarting" in done.stderr
        assert f"the sale {reference} is still live after 4s: nothing was restarted" in done.stderr
        assert os.readlink(root / "opt/mpqr-kiosk/current") == old
        assert "stop" not in (fake / "calls").read_text().split()  # the daemon kept running
        assert schema(state)[0] == 1
        daemon.control("cancel")
        assert daemon.until(lambda: daemon.state_of(reference) == "cancelled")

        # 2. Idle now, but the new version fails under systemd: back to the old one, journal as it was.
        done = run(root, src=newer_checkout, env={**env, "FAIL_VERSION": "0.1.1"})
        assert done.returncode == 1, done.stderr
        assert "the new version did not start: going back to" in done.stderr
        assert "upgrade to 0.1.1-" in done.stderr and "failed; the box runs" in done.stderr
        assert os.readlink(root / "opt/mpqr-kiosk/current") == old
        assert (fake / "state").read_text().strip() == "active"  # the old one started again
        assert schema(state) == (1, [("mpqr-old-1", "paid", 2150, "p1", "printed")])
        calls = [line.split()[0] for line in (fake / "calls").read_text().splitlines()]
        assert [c for c in calls if c in ("stop", "start", "reset-failed")] == [
            "stop", "start", "stop", "reset-failed", "start"]  # new failed, old back
        assert calls.index("daemon-reload") > calls.index("stop")  # the new unit only once the old one stopped

        # 3. It works: switched, previous kept for the next rollback, journal untouched until the new daemon
        #    opens (and migrates) it, every file still the daemon user's.
        done = run(root, src=newer_checkout, env=env)
        assert done.returncode == 0, done.stderr
    finally:
        daemon.close()
    current = os.readlink(root / "opt/mpqr-kiosk/current")
    assert current.startswith("venvs/0.1.1-") and os.readlink(root / "opt/mpqr-kiosk/previous") == old
    assert (fake / "state").read_text().strip() == "active"
    assert schema(state)[0] == 1 and owners(state) == {daemon_user}
    snapshot = next(state.glob("sales.before-0.1.1-*.sqlite3"))
    assert stat.filemode(snapshot.stat().st_mode) == "-rw-------"
    assert sorted(p.name for p in (root / "opt/mpqr-kiosk/venvs").iterdir()) == sorted([current[6:], old[6:]])
    loaded = subprocess.run(
        [str(root / "opt/mpqr-kiosk" / current / "bin/python"), "-c",
         "import sys, json; from mpqr_kiosk.journal import Journal; s = Journal(sys.argv[1]).get('mpqr-old-1');"
         " print(json.dumps([s.state.value, s.paid_amount]))", str(state)],
        capture_output=True, text=True, timeout=60, cwd="/")
    assert json.loads(loaded.stdout) == ["paid", 2150], loaded.stderr
    assert schema(state) == (len(MIGRATIONS), [("mpqr-old-1", "paid", 2150, "p1", "printed")])


def test_a_release_that_cannot_migrate_the_journal_never_takes_over(installed, tmp_path_factory, tmp_path):
    broken = release(tmp_path_factory, "0.1.2")
    journal_py = broken / "mpqr_kiosk" / "journal.py"
    journal_py.write_text(journal_py.read_text()  # a next schema step that fails
                          + '\nMIGRATIONS = (*MIGRATIONS, "ALTER TABLE no_such_table ADD COLUMN x TEXT;")\n')
    root = copy_of(installed, tmp_path)
    env = booted(root, tmp_path / "fake", "active")
    state = root / "var/lib/mpqr-kiosk"
    old_journal(state, ids(root))
    old = os.readlink(root / "opt/mpqr-kiosk/current")
    done = run(root, "--now", src=broken, env=env)
    assert done.returncode == 1
    assert "0.1.2-" in done.stderr and "cannot migrate the journal" in done.stderr
    assert "stopped half-way: back to" in done.stderr
    assert os.readlink(root / "opt/mpqr-kiosk/current") == old
    assert (tmp_path / "fake/state").read_text().strip() == "active"
    assert schema(state) == (1, [("mpqr-old-1", "paid", 2150, "p1", "printed")])


def test_uninstall_keeps_the_config_and_journal_and_purge_removes_them(installed, tmp_path):
    root = copy_of(installed, tmp_path)
    old_journal(root / "var/lib/mpqr-kiosk")
    done = run(root, "--uninstall")
    assert done.returncode == 0, done.stderr
    for gone in ("opt/mpqr-kiosk", "usr/local/bin/mpqr-kiosk", "etc/systemd/system/mpqr-kiosk.service",
                 "etc/systemd/system/multi-user.target.wants/mpqr-kiosk.service",
                 "usr/lib/sysusers.d/mpqr-kiosk.conf", "etc/udev/rules.d/99-mpqr-kiosk.rules"):
        assert not os.path.lexists(root / gone), gone
    assert (root / "etc/mpqr-kiosk/access_token").read_text() == TOKEN + "\n"
    assert schema(root / "var/lib/mpqr-kiosk")[1] == [("mpqr-old-1", "paid", 2150, "p1", "printed")]
    assert "--purge removes them" in done.stderr
    db = sqlite3.connect(root / "var/lib/mpqr-kiosk" / FILE_NAME)
    db.execute("UPDATE sales SET state = 'review'")
    db.commit()
    db.close()
    done = run(root, "--uninstall", "--purge")
    assert done.returncode == 1
    assert "not purging: these sales are not finished: mpqr-old-1 (review)" in done.stderr
    assert (root / "etc/mpqr-kiosk/access_token").exists()
    done = run(root, "--uninstall", "--purge", "--now")
    assert done.returncode == 0
    assert not (root / "etc/mpqr-kiosk").exists() and not (root / "var/lib/mpqr-kiosk").exists()


def test_help_and_bad_options():
    done = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "--root DIR" in done.stdout and "--uninstall" in done.stdout
    done = subprocess.run(["bash", str(INSTALL), "--purge"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--purge goes with --uninstall" in done.stderr
    done = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown option --frobnicate" in done.stderr
    for args, message in ((["--root="], "--root needs a value"), (["--root"], "--root needs a value"),
                          (["--root", "/dev/null/x"], "--root /dev/null/x: cannot create that directory"),
                          (["--token-file"], "--token-file needs a value")):
        done = subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
