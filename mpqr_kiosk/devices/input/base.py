"""What every input source shares: a name, a health flag and one daemon thread that ``stop()`` ends."""

from __future__ import annotations

import threading


class ThreadedSource:
    """An input source (``InputSource``) whose work is ``_run``, in a daemon thread named ``name``.

    ``_run`` must return soon after ``_stopping`` is set; ``stop()`` sets it and waits (5 s at most) for
    the thread. Once stopped, a source stays stopped. ``healthy`` reads ``_healthy``, which the subclass
    keeps up to date.
    """

    name: str

    def __init__(self) -> None:
        self._healthy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError
