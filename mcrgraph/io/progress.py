"""Progress bars on stderr (tqdm), off when not asked for or when stderr is not a terminal in CI."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, **options):
    """A tqdm bar; ``options`` go to tqdm (``unit_scale=True`` for bytes, ``initial=``)."""
    from tqdm.auto import tqdm

    disable = not enabled or (os.environ.get("CI") == "true" and not sys.stderr.isatty())
    bar = tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, dynamic_ncols=True, **options)
    try:
        yield bar
    finally:
        bar.close()
