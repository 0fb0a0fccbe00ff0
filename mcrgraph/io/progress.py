"""Progress bars on stderr (tqdm), off when not asked for or when stderr is not a terminal in CI;
``observe(callback)`` also reports every bar's progress in this thread to ``callback`` (a
server shows a connect's epochs this way)."""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Callable

_local = threading.local()


@contextlib.contextmanager
def observe(callback: Callable[[str, int, int | None], None]):
    """While open, every progress bar this thread opens calls ``callback(desc, done, total)``
    when it starts and at each update, whether or not the bar is shown."""
    before = getattr(_local, "callback", None)
    _local.callback = callback
    try:
        yield
    finally:
        _local.callback = before


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, **options):
    """A tqdm bar; ``options`` go to tqdm (``unit_scale=True`` for bytes, ``initial=``)."""
    from tqdm.auto import tqdm

    disable = not enabled or (os.environ.get("CI") == "true" and not sys.stderr.isatty())
    bar = tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, dynamic_ncols=True, **options)
    callback = getattr(_local, "callback", None)
    if callback is not None:
        done, update = [options.get("initial", 0)], bar.update

        def reporting_update(n=1):
            done[0] += n
            callback(desc, done[0], total)
            return update(n)

        bar.update = reporting_update
        callback(desc, done[0], total)
    try:
        yield bar
    finally:
        bar.close()
