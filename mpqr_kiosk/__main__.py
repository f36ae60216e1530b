"""``python -m mpqr_kiosk``: the same commands as the ``mpqr-kiosk`` console script."""

from mpqr_kiosk.cli import main

raise SystemExit(main())
