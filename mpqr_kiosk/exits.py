"""The exit codes of every command (PRODUCT.md): systemd and technicians' scripts depend on them."""

OK = 0
USAGE = 2  # argparse's own
CONFIG = 3  # the config (or the token file, or a device named in it) is invalid; systemd does not restart
CHECK = 4  # a check failed, or the daemon refused the request
TEMPFAIL = 75  # a temporary failure: try again later (systemd restarts the daemon)
