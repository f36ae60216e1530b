# Sourced by scripts/bootstrap and scripts/install.sh: a virtualenv holding exactly the pins of the lock
# files in requirements/ (every file checked against its sha256), and nothing else from the index.

# lock_venv PYTHON VENV LOCK... : create VENV if needed, install the build pins, then the given locks
lock_venv() {
  local py=$1 venv=$2; shift 2
  [[ -x $venv/bin/python ]] || "$py" -m venv "$venv" || return
  local pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps)
  "${pip[@]}" -r "$LOCKS/build.txt" || return
  local reqs=() lock
  for lock in "$@"; do reqs+=(-r "$LOCKS/$lock"); done
  # source builds (evdev, spidev, systemd-python) use the pinned setuptools just installed
  "${pip[@]}" --no-build-isolation "${reqs[@]}"
}

# locks_stamp FILE... : what a venv was built from (locks, package metadata), to rebuild only on change
locks_stamp() {
  cat "$LOCKS"/*.txt "$@" | sha256sum | cut -c1-16
}
