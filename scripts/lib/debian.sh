# Sourced by scripts/bootstrap and scripts/install.sh: the Debian packages mpqr-kiosk builds and runs
# with, and what each one buys.
declare -A DEBIAN_WHY=(
  [python3-venv]="creating the virtualenv with the system Python"
  [gcc]="compiling evdev (USB scanners and keypads) and spidev"
  [python3-dev]="compiling evdev, spidev and systemd-python"
  [linux-libc-dev]="evdev's input headers"
  [libusb-1.0-0]="USB printers (pyusb backend)"
  [libsystemd-dev]="systemd-python (journal handler, sd_notify); a pure-Python fallback is used without it"
  [pkg-config]="finding libsystemd when building systemd-python"
  [systemd]="systemd-sysusers and systemctl, which scripts/install.sh (and its tests) use"
)

# debian_missing PACKAGE... : print those of the packages that are not installed
debian_missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# debian_install PACKAGE... : install them quietly (root only); the apt output is shown only on failure
debian_install() {
  local log
  log=$(mktemp)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}
