#!/usr/bin/env bash
# Install, upgrade or uninstall mpqr-kiosk on Raspberry Pi OS Bookworm (64-bit) or Debian 12.
usage() {
  cat <<'EOF'
Usage: sudo ./scripts/install.sh [OPTIONS]

Installs this checkout as the mpqr-kiosk service, or upgrades an installed box to it:
  /opt/mpqr-kiosk          a virtualenv per version (from requirements/*.txt, hashes checked), the
                           current one linked as /opt/mpqr-kiosk/bin and /usr/local/bin/mpqr-kiosk
  /etc/mpqr-kiosk          kiosk.toml and catalog.csv (first install only: your edits are kept),
                           access_token (0600, root only)
  /var/lib/mpqr-kiosk      the sales journal (kept on upgrade and uninstall)
  the mpqr-kiosk user and its device groups (sysusers), udev rules, the systemd unit (enabled)

An upgrade builds the new virtualenv beside the old one, waits until no sale is live, migrates the
journal, switches over in one step and restarts the service; when the new version fails to start, the
box goes back to the previous one.

Options:
  --token-file FILE  read the access token from FILE ("-": standard input) and store it; without it the
                     first install asks for it (the input is hidden and never stored in the history)
  --no-start         install or upgrade without starting or restarting the service
  --now              restart at once, even while a sale is live (the sale resumes after the restart)
  --wait SECONDS     how long to wait for a live sale to end before giving up (default 600)
  --root DIR         install into the directory tree DIR (image builders, tests): nothing outside DIR
                     is touched, no Debian package is installed and no service is started
  --uninstall        remove the service and /opt/mpqr-kiosk; keeps /etc/mpqr-kiosk and the journal
  --purge            with --uninstall: also remove /etc/mpqr-kiosk and /var/lib/mpqr-kiosk
  -h, --help         this help

Exit status: 0 done, 1 failed (the message says what and what was left as it was), 2 bad usage,
75 a sale was still live after --wait (run again later, or with --now).
EOF
}
set -euo pipefail
{ set +x; } 2>/dev/null  # never traced (bash -x, SHELLOPTS): the access token passes through this shell
umask 022
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCKS="$SRC/requirements"
source "$SRC/scripts/lib/debian.sh"
source "$SRC/scripts/lib/venv.sh"

ROOT="" ROOT_GIVEN=0 TOKEN_FILE="" NO_START=0 NOW=0 WAIT=600 UNINSTALL=0 PURGE=0
value() {  # value OPTION [VALUE] : the option's value must be there and not empty
  [[ $# -ge 2 && -n $2 ]] || { echo "install.sh: $1 needs a value (see --help)" >&2; exit 2; }
}
while (($#)); do
  case $1 in
    --root) value "$@"; ROOT=$2; ROOT_GIVEN=1; shift ;;
    --root=*) value --root "${1#*=}"; ROOT=${1#*=}; ROOT_GIVEN=1 ;;
    --token-file) value "$@"; TOKEN_FILE=$2; shift ;;
    --token-file=*) value --token-file "${1#*=}"; TOKEN_FILE=${1#*=} ;;
    --wait) value "$@"; WAIT=$2; shift ;;
    --wait=*) WAIT=${1#*=} ;;
    --no-start) NO_START=1 ;;
    --now) NOW=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $WAIT =~ ^[0-9]+$ ]] || { echo "install.sh: --wait takes whole seconds, not $WAIT" >&2; exit 2; }
((PURGE == 0 || UNINSTALL == 1)) || { echo "install.sh: --purge goes with --uninstall" >&2; exit 2; }
if ((ROOT_GIVEN)); then
  mkdir -p -- "$ROOT" 2>/dev/null || { echo "install.sh: --root $ROOT: cannot create that directory" >&2; exit 2; }
  ROOT=$(cd -- "$ROOT" && pwd) || exit 2
  [[ $ROOT != / ]] || ROOT=""
  # no pip cache outside the tree (a caller may choose one with PIP_CACHE_DIR)
  [[ -n ${PIP_CACHE_DIR:-} ]] || export PIP_NO_CACHE_DIR=1
fi
[[ -z $TOKEN_FILE || $TOKEN_FILE == - || $TOKEN_FILE == /* ]] || TOKEN_FILE="$PWD/$TOKEN_FILE"
cd /  # so that no Python below imports mpqr_kiosk from the checkout instead of its virtualenv

PREFIX=/opt/mpqr-kiosk
OPT="$ROOT$PREFIX"
ETC="$ROOT/etc/mpqr-kiosk"
STATE="$ROOT/var/lib/mpqr-kiosk"
UNIT="$ROOT/etc/systemd/system/mpqr-kiosk.service"
SYSUSERS="$ROOT/usr/lib/sysusers.d/mpqr-kiosk.conf"
UDEV="$ROOT/etc/udev/rules.d/99-mpqr-kiosk.rules"
LINK="$ROOT/usr/local/bin/mpqr-kiosk"
SYSTEMCTL=${MPQR_SYSTEMCTL:-systemctl}   # tests give a stand-in for a machine without systemd as PID 1
PYTHON=${MPQR_PYTHON:-/usr/bin/python3.11}

say() { echo "install.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
# systemd runs this file system (under --root only with a stand-in systemctl: tests)
booted() { [[ -d $ROOT/run/systemd/system && ( -z $ROOT || -n ${MPQR_SYSTEMCTL:-} ) ]]; }
service_active() { booted && "$SYSTEMCTL" is-active --quiet mpqr-kiosk.service; }

# ---- checks before anything changes ----------------------------------------------------------------
preflight() {
  [[ $(id -u) == 0 ]] || die "run as root (it sets owners, even under --root): sudo $0"
  local release=${MPQR_OS_RELEASE:-/etc/os-release} ID="" VERSION_CODENAME="" PRETTY_NAME="unknown"
  # shellcheck disable=SC1090
  [[ -r $release ]] && source "$release"
  [[ ($ID == debian || $ID == raspbian) && $VERSION_CODENAME == bookworm ]] \
    || die "mpqr-kiosk installs on Raspberry Pi OS Bookworm or Debian 12; this machine runs $PRETTY_NAME ($release)"
  case ${MPQR_MACHINE:-$(uname -m)} in
    x86_64|aarch64) ;;
    armv7l|armv6l) die "32-bit Raspberry Pi OS is not supported: install Raspberry Pi OS Bookworm 64-bit. PyPI has no 32-bit ARM wheels of Pillow and zxing-cpp, and Pillow built from source would draw the screens with another FreeType than preview shows" ;;
    *) die "unsupported machine $(uname -m): mpqr-kiosk runs on aarch64 (Raspberry Pi, 64-bit) and x86_64" ;;
  esac
  [[ $SRC/ != "$OPT"/* ]] || die "run install.sh from a clone outside $PREFIX (this one is inside it): git clone $SRC ~/mpqr-kiosk"
  [[ ! -e $OPT/.git && ! -e $OPT/.venv ]] || die "$PREFIX holds a manual install (a git checkout): sudo systemctl stop mpqr-kiosk && sudo mv $OPT $OPT.manual, then run install.sh again (it keeps /etc/mpqr-kiosk and the journal)"
  [[ -x $PYTHON ]] && "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "Python 3.11 is required at $PYTHON (Bookworm's python3: apt-get install python3)"
}

debian_packages() {
  local wanted=("${!DEBIAN_WHY[@]}") missing
  mapfile -t missing < <(debian_missing "${wanted[@]}")
  ((${#missing[@]})) || return 0
  if [[ -n $ROOT ]]; then
    say "--root: not installing Debian packages on this machine; missing here: ${missing[*]}"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  debian_install "${missing[@]}" || die "apt-get could not install ${missing[*]} (is the Debian mirror reachable?); nothing else was changed"
}

# ---- the virtualenv ---------------------------------------------------------------------------------
version() { sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$SRC/mpqr_kiosk/__init__.py"; }

# The locks a box installs: systemd-python where libsystemd-dev lets it build.
venv_locks() { echo runtime.txt; [[ -n $(debian_missing libsystemd-dev) ]] || echo systemd.txt; }

# What a virtualenv is built from: the source, the package metadata, the locks and the Python.
build_stamp() {
  (cd "$SRC" && find mpqr_kiosk -name '*.py' -print0 | sort -z | xargs -0 sha256sum
   sha256sum setup.cfg pyproject.toml requirements/*.txt; venv_locks; "$PYTHON" -VV) | sha256sum | cut -c1-12
}

index_reachable() {  # index_reachable VENV : the package index pip will use answers
  local url shown
  url=${PIP_INDEX_URL:-$("$1/bin/python" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}
  [[ $url == http* ]] || return 0
  shown=$(sed -E 's#//[^/@]*@#//***@#' <<<"$url")  # never a password in the index URL
  "$1/bin/python" - "$url" <<'PY' || { say "error: cannot reach the package index $shown: the box needs the internet (or PIP_INDEX_URL) to install; the installed version, if any, was left as it was"; return 1; }
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/pip/", timeout=20).close()
except Exception as exc:  # the reason only: the URL may hold a password
    sys.stderr.write(f"install.sh: {type(exc).__name__}: {getattr(exc, 'reason', '') or getattr(exc, 'code', '')}\n")
    sys.exit(1)
PY
}

# build_venv DIR : the pinned dependencies and this checkout's package in DIR, proven to import
build_venv() {
  local dir=$1 locks tmp log
  mapfile -t locks < <(venv_locks)
  [[ -f $dir/.complete ]] && return 0
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  "$PYTHON" -m venv "$dir" || die "could not create a virtualenv with $PYTHON (apt-get install python3-venv)"
  index_reachable "$dir" || { rm -rf "$dir"; exit 1; }
  say "building $dir from requirements/${locks[*]}"
  log=$(mktemp)
  lock_venv "$PYTHON" "$dir" "${locks[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; rm -rf "$dir" "$log"; die "pip could not install requirements/${locks[*]}; the installed version, if any, was left as it was"; }
  # Build from a copy, so the checkout gets no root-owned build/ or egg-info.
  tmp=$(mktemp -d)
  tar -C "$SRC" --exclude=.git --exclude='.venv*' --exclude=build --exclude='*.egg-info' -cf - . | tar -C "$tmp" -xf -
  "$dir/bin/python" -m pip install -q --no-deps --no-build-isolation "$tmp" >"$log" 2>&1 \
    || { cat "$log" >&2; rm -rf "$dir" "$log" "$tmp"; die "could not build mpqr-kiosk from $SRC"; }
  rm -rf "$tmp" "$log"
  "$dir/bin/python" -c 'import mpqr_kiosk.daemon, mpqr_kiosk.check, mpqr_kiosk.provision' \
    || { rm -rf "$dir"; die "the new version does not start (see the error above); the installed version, if any, was left as it was"; }
  if [[ -n $ROOT ]]; then  # the tree is meant to be copied to /: scripts name /opt/mpqr-kiosk, not DIR
    grep -rlI --null -F "$ROOT$PREFIX" "$dir/bin" | xargs -0 -r sed -i "s#$ROOT$PREFIX#$PREFIX#g"
  fi
  sync -f "$dir"  # the files on disk before the mark that says they are
  touch "$dir/.complete"
}

# ---- files ------------------------------------------------------------------------------------------
ids() {  # the service user's uid and gid, from the target tree's /etc/passwd
  if [[ -n $ROOT ]]; then
    UID_=$(awk -F: '$1=="mpqr-kiosk"{print $3}' "$ROOT/etc/passwd")
    GID_=$(awk -F: '$1=="mpqr-kiosk"{print $3}' "$ROOT/etc/group")
  else
    UID_=$(id -u mpqr-kiosk); GID_=$(id -g mpqr-kiosk)
  fi
  [[ -n $UID_ && -n $GID_ ]] || die "the user mpqr-kiosk was not created (systemd-sysusers $SYSUSERS)"
}

service_user() {
  install -d -m 0755 "$ROOT/etc"
  install -d -m 0755 "$(dirname "$SYSUSERS")"
  put "$SRC/systemd/mpqr-kiosk.sysusers" "$SYSUSERS" 0644
  systemd-sysusers ${ROOT:+--root="$ROOT"} "$SYSUSERS" || die "systemd-sysusers could not create the user mpqr-kiosk"
  ids
}

# put SOURCE DEST MODE : DEST replaced in one rename (a power cut leaves the old file or the new one),
# and only when it differs
put() {
  cmp -s "$1" "$2" && [[ $(stat -c %a "$2") == "${3#0}" ]] && return 0
  install -m "$3" "$1" "$2.new" && sync "$2.new" && mv -f "$2.new" "$2" && sync "$(dirname "$2")"
}

# first_install SOURCE DEST MODE GROUP : a file the technician owns after the first install; never overwritten
first_install() {
  if [[ -e $2 ]]; then say "kept $2 (yours)"; return 0; fi
  install -m "$3" -o 0 -g "$4" "$1" "$2"
  say "wrote $2"
}

store_token() {
  local token="" target="$ETC/access_token"
  if [[ -n $TOKEN_FILE ]]; then
    if [[ $TOKEN_FILE == - ]]; then IFS= read -r token || true
    else [[ -r $TOKEN_FILE ]] || die "cannot read the token file $TOKEN_FILE"; IFS= read -r token <"$TOKEN_FILE" || true
    fi
  elif [[ -s $target ]]; then
    return 0
  elif [[ -t 0 ]]; then
    read -rs -p "Paste the Mercado Pago access token (the input is hidden), then Enter: " token || true; echo >&2
  else
    IFS= read -r token || true
  fi
  token=${token%$'\r'}
  token="${token#"${token%%[![:space:]]*}"}"; token="${token%"${token##*[![:space:]]}"}"
  if [[ -z $token ]]; then
    say "no access token yet: store it later with  sudo ./scripts/install.sh --token-file -  (then paste it)"
    return 0
  fi
  [[ $token =~ ^[[:graph:]]{8,512}$ ]] || die "that access token has spaces or control characters in it: paste only the token (APP_USR-… or TEST-…); nothing was stored"
  (umask 077; printf '%s\n' "$token" >"$target.new" && chown 0:0 "$target.new" && mv -f "$target.new" "$target")
  say "stored the access token in $target (mode 0600, root only)"
}

install_files() {
  service_user
  install -d -m 0755 "$OPT" "$ROOT/usr/local/bin" "$(dirname "$UNIT")" "$(dirname "$UDEV")"
  install -d -m 0750 -o 0 -g "$GID_" "$ETC"
  install -d -m 0750 -o "$UID_" -g "$GID_" "$STATE"
  first_install "$SRC/config/kiosk.toml" "$ETC/kiosk.toml" 0640 "$GID_"
  first_install "$SRC/config/catalog.csv" "$ETC/catalog.csv" 0640 "$GID_"
  first_install "$SRC/systemd/99-mpqr-kiosk.rules" "$UDEV" 0644 0
  store_token
  put "$SRC/README.md" "$OPT/README.md" 0644
  ln -sfn current/bin "$OPT/bin"
  ln -sfn "$PREFIX/bin/mpqr-kiosk" "$LINK"
  [[ -n $ROOT ]] || ! command -v udevadm >/dev/null || udevadm control --reload-rules 2>/dev/null || true
}

# The unit, enabled; a running service picks up a changed unit at its next (re)start only.
unit_in_place() {
  put "$SRC/systemd/mpqr-kiosk.service" "$UNIT" 0644
  if booted; then
    "$SYSTEMCTL" daemon-reload
    "$SYSTEMCTL" enable --quiet mpqr-kiosk.service
  else
    "$SYSTEMCTL" --root="${ROOT:-/}" enable --quiet mpqr-kiosk.service
  fi
}

# ---- upgrade: wait, snapshot, migrate, switch, start, roll back -------------------------------------
live_sale() {  # the live sale's reference; "" when idle; "?" when the daemon does not say
  local answer
  answer=$("$OPT/current/bin/python" -m mpqr_kiosk --config "$ETC/kiosk.toml" status --json 2>/dev/null) \
    || { echo "?"; return 0; }
  "$PYTHON" -c 'import json, sys
a = json.loads(sys.stdin.read())
s = a.get("sale")
print("?" if a.get("ok") is not True else s["reference"] if s else "")' <<<"$answer" 2>/dev/null || echo "?"
}

wait_for_no_sale() {  # until the running daemon says no sale is live (--wait seconds at most; --now: at once)
  local ref start=$SECONDS said=-1000 what
  ((NOW)) && return 0
  while ref=$(live_sale); [[ -n $ref ]]; do
    what="the sale $ref"
    [[ $ref != "?" ]] || what="the daemon's answer (it does not say whether a sale is live)"
    if ((SECONDS - start >= WAIT)); then
      if [[ $ref == "?" ]]; then say "no answer from the daemon on its sales after ${WAIT}s: nothing was restarted"
      else say "the sale $ref is still live after ${WAIT}s: nothing was restarted"; fi
      say "the new version is built and ready: run again when the box is idle, or with --now"
      exit 75
    fi
    if ((SECONDS - said >= 30)); then
      say "waiting for $what before restarting (up to ${WAIT}s; --now restarts at once)"
      said=$SECONDS
    fi
    sleep 2
  done
}

journal() {  # journal snapshot|restore|unfinished LIVE [SNAPSHOT] : the sales journal, with sqlite3
  "$PYTHON" - "$@" <<'PY'
import os, sqlite3, sys
verb, path = sys.argv[1], sys.argv[2]
owner = os.stat(path)
def own():  # the -wal and -shm this root shell leaves are the daemon's user's, as the journal is
    for sidecar in (path + "-wal", path + "-shm"):
        if os.path.exists(sidecar):
            os.chown(sidecar, owner.st_uid, owner.st_gid)
def copy(source, target):
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    src.backup(dst)
    src.close(), dst.close()
def tables(db):
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
def rows(db, table, columns):
    names = ", ".join('"%s"' % c for c in columns)
    return sorted(db.execute('SELECT %s FROM "%s"' % (names, table)).fetchall(), key=repr)
if verb == "snapshot":
    copy(path, sys.argv[3])
elif verb == "restore":  # only when the failed start changed nothing but the schema
    snap, live = sqlite3.connect(sys.argv[3]), sqlite3.connect(path, isolation_level=None)
    live.execute("BEGIN EXCLUSIVE")
    old = tables(snap)
    columns = {t: [r[1] for r in snap.execute('PRAGMA table_info("%s")' % t)] for t in old}
    same = all(rows(live, t, columns[t]) == rows(snap, t, columns[t]) for t in old) and all(
        live.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0] == 0 for t in tables(live) if t not in old)
    live.execute("ROLLBACK")
    snap.close(), live.close()
    if not same:
        own()
        sys.exit("install.sh: the new version wrote sales to the journal before it failed: not restoring it")
    copy(sys.argv[3], path)
    os.chown(path, owner.st_uid, owner.st_gid)
elif verb == "unfinished":  # sales a purge would lose: live, not printed, refunds pending, review
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    found = db.execute("SELECT reference, state FROM sales WHERE state IN ('pushing', 'waiting', 'cancelling',"
                       " 'refunding', 'review') OR (state = 'paid' AND receipt != 'printed')").fetchall()
    db.close()
    print(" ".join("%s (%s)" % row for row in found))
own()
PY
}

switch_link() {  # switch_link VENV : /opt/mpqr-kiosk/current names VENV, in one rename, on disk
  ln -sfn "venvs/$1" "$OPT/current.new" && mv -T "$OPT/current.new" "$OPT/current" && sync -f "$OPT"
}

started() { "$SYSTEMCTL" start mpqr-kiosk.service && sleep "${MPQR_START_SETTLE:-3}" && service_active; }

# After the service was stopped for an upgrade, any way out but success puts the old version back.
OLD="" SNAPSHOT="" STOPPED=0
back_to_old() {
  ((STOPPED)) || return 0
  STOPPED=0
  trap - EXIT
  "$SYSTEMCTL" stop mpqr-kiosk.service 2>/dev/null || true  # no restart of the failed one meanwhile
  "$SYSTEMCTL" reset-failed mpqr-kiosk.service 2>/dev/null || true
  switch_link "$OLD"
  if [[ -n $SNAPSHOT ]] && ! journal restore "$STATE/sales.sqlite3" "$SNAPSHOT"; then
    say "the box stays stopped: $OLD cannot read the journal $NEW wrote; run install.sh again, or see journalctl -u mpqr-kiosk"
    exit 1
  fi
  "$SYSTEMCTL" start mpqr-kiosk.service || say "$OLD did not start either: see journalctl -u mpqr-kiosk"
}

switch_to() {  # switch_to NEW : make NEW the current virtualenv, restarting the service around it
  local new=$1 running=0 trial
  OLD=$(basename "$(readlink "$OPT/current" 2>/dev/null)" 2>/dev/null || true)
  if [[ $OLD == "$new" ]]; then
    unit_in_place
    booted && ((!NO_START)) && ! service_active && { started || die "mpqr-kiosk did not start: see journalctl -u mpqr-kiosk"; }
    return 0
  fi
  if service_active; then
    ((NO_START)) && { say "built $new; --no-start: the service keeps running $OLD until the next install.sh run"; return 0; }
    wait_for_no_sale
    trap 'say "stopped half-way: back to $OLD"; back_to_old' EXIT
    "$SYSTEMCTL" stop mpqr-kiosk.service
    STOPPED=1 running=1
  fi
  if [[ -f $STATE/sales.sqlite3 ]]; then
    # a copy to go back to, and the migration tried on another copy: the daemon migrates the journal itself
    SNAPSHOT="$STATE/sales.before-$new.sqlite3"
    (umask 077; journal snapshot "$STATE/sales.sqlite3" "$SNAPSHOT") || die "could not copy the journal $STATE/sales.sqlite3"
    trial=$(mktemp -d)
    cp "$SNAPSHOT" "$trial/sales.sqlite3"
    "$OPT/venvs/$new/bin/python" -c 'import sys; from mpqr_kiosk.journal import Journal; Journal(sys.argv[1]).close()' "$trial" \
      || { rm -rf "$trial"; SNAPSHOT=""; die "$new cannot migrate the journal (see above); the box runs $OLD again"; }
    rm -rf "$trial"
  fi
  unit_in_place
  switch_link "$new"
  [[ -n $OLD ]] && ln -sfn "venvs/$OLD" "$OPT/previous"
  say "switched to $new"
  if [[ -z $OLD ]] && ! grep -q '^qr_payload = "[^"]' "$ETC/kiosk.toml" 2>/dev/null; then
    say "not started yet: the POS has no qr_payload in $ETC/kiosk.toml (provision, check, then systemctl start mpqr-kiosk)"
  elif booted && ((!NO_START)) || ((running)); then
    if ! started; then
      [[ -n $OLD ]] || die "mpqr-kiosk did not start: see journalctl -u mpqr-kiosk"
      STOPPED=1
      say "the new version did not start: going back to $OLD (see journalctl -u mpqr-kiosk)"
      back_to_old
      die "upgrade to $new failed; the box runs $OLD again"
    fi
  fi
  STOPPED=0
  trap - EXIT
  # keep the current and the previous virtualenv, and the journal copies of the last three upgrades
  local dir
  for dir in "$OPT"/venvs/*; do
    [[ $(basename "$dir") == "$new" || $(basename "$dir") == "$OLD" ]] || rm -rf "$dir"
  done
  { ls -1t "$STATE"/sales.before-*.sqlite3 2>/dev/null || true; } | tail -n +4 | xargs -r rm -f
}

# ---- uninstall --------------------------------------------------------------------------------------
uninstall() {
  if service_active; then wait_for_no_sale; fi
  if ((PURGE && !NOW)) && [[ -f $STATE/sales.sqlite3 ]]; then
    local open
    open=$(journal unfinished "$STATE/sales.sqlite3")
    [[ -z $open ]] || die "not purging: these sales are not finished: $open (settle them: mpqr-kiosk review; or --now purges anyway)"
  fi
  if booted; then "$SYSTEMCTL" disable --now --quiet mpqr-kiosk.service 2>/dev/null || true
  else "$SYSTEMCTL" --root="${ROOT:-/}" disable --quiet mpqr-kiosk.service 2>/dev/null || true; fi
  rm -f "$UNIT" "$LINK" "$SYSUSERS"
  booted && "$SYSTEMCTL" daemon-reload
  if [[ -f $UDEV ]] && ! cmp -s "$UDEV" "$SRC/systemd/99-mpqr-kiosk.rules"; then say "kept $UDEV (you edited it)"; else rm -f "$UDEV"; fi
  rm -rf "$OPT"
  if ((PURGE)); then
    rm -rf "$ETC" "$STATE"
    say "removed mpqr-kiosk, its configuration, token and sales journal"
  else
    say "removed mpqr-kiosk; kept $ETC (configuration, token) and $STATE (sales journal): --purge removes them"
  fi
  say "the user mpqr-kiosk stays (Debian keeps system users so that no file is left to a reused id)"
}

if ((UNINSTALL)); then
  [[ $(id -u) == 0 ]] || die "run as root: sudo $0 --uninstall"
  uninstall
  exit 0
fi
preflight
debian_packages
NEW="$(version)-$(build_stamp)"
build_venv "$OPT/venvs/$NEW"
install_files
switch_to "$NEW"
say "mpqr-kiosk $(version) installed in $PREFIX (${ROOT:+under $ROOT, }config in /etc/mpqr-kiosk)"
if [[ -z $ROOT ]] && ! grep -q '^qr_payload = "[^"]' "$ETC/kiosk.toml"; then
  say "next: edit /etc/mpqr-kiosk/kiosk.toml, then  sudo mpqr-kiosk provision  and  sudo mpqr-kiosk check"
fi
