"""Bounds on one transfer, shared by the hand-written HTTP client (http.py) and the guard around
huggingface_hub's client (hub.py): a cap at the size the file is known to have, and a minimum
rate over a window. A socket timeout only notices silence; a server that sends one byte a second
never trips it, so the rate is measured on the bytes as they arrive.

``MCRGRAPH_MIN_RATE`` (bytes per second, ``0`` turns the check off) and ``MCRGRAPH_RATE_WINDOW``
(seconds) are the setting for slow links."""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

from ..errors import DownloadError

ENV_RATE, ENV_WINDOW = "MCRGRAPH_MIN_RATE", "MCRGRAPH_RATE_WINDOW"
MIN_RATE = 10_000  # bytes/s: 0.08 Mbit/s; a link slower than that should say so (ENV_RATE)
WINDOW = 60.0  # seconds the rate is averaged over (and the longest silence waited for)


class TransferRefused(DownloadError):
    """The server broke a bound (longer than the file, a range or version other than asked):
    another attempt starts from zero, the bytes received are not kept."""


class Stalled(DownloadError):
    """Slower than the minimum rate over the window: worth another attempt (a resume)."""


@dataclass(frozen=True)
class Limits:
    min_rate: float = MIN_RATE
    window: float = WINDOW

    @classmethod
    def from_env(cls) -> "Limits":
        def number(var: str, default: float) -> float:
            raw = os.environ.get(var, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise DownloadError(f"{var}={raw!r} is not a number") from None
            if value < 0 or value != value:
                raise DownloadError(f"{var}={raw!r} must be >= 0")
            return value

        window = number(ENV_WINDOW, WINDOW)
        return cls(number(ENV_RATE, MIN_RATE), window if window > 0 else WINDOW)


class Meter:
    """Counts the body bytes of one response. ``start`` bytes of the file are already on disk
    (a resume); ``size`` is the file's full size when known. ``add`` raises TransferRefused past
    the size, Stalled when the last ``window`` seconds brought fewer than ``min_rate * window``
    bytes (checked once a full window has passed)."""

    def __init__(self, what: str, size: int | None, limits: Limits, start: int = 0, clock=time.monotonic):
        self.what, self.size, self.limits, self.clock = what, size, limits, clock
        self.total = start
        self.began = clock()
        self.marks: deque[tuple[float, int]] = deque([(self.began, start)])

    def add(self, n: int) -> None:
        self.total += n
        if self.size is not None and self.total > self.size:
            raise TransferRefused(f"{self.what}: the server sent more than the file's {self.size:,} bytes; refused")
        now = self.clock()
        self.marks.append((now, self.total))
        window, rate = self.limits.window, self.limits.min_rate
        while len(self.marks) > 1 and self.marks[1][0] <= now - window:
            self.marks.popleft()  # keep one mark at or before the window's start
        if rate and now - self.began >= window:
            t0, n0 = self.marks[0]
            if (self.total - n0) < rate * window:
                raise Stalled(f"{self.what}: {self.total - n0:,} bytes in the last {now - t0:.0f} s, below the minimum of "
                              f"{rate:,.0f} B/s; on a slow link set {ENV_RATE} (bytes per second, 0 for no minimum)")
