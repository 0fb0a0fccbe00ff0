"""Shared media helpers: batched, prefetched decoding keeps order and raises errors as they are."""
from __future__ import annotations

import pytest

from mcrgraph.errors import DataError
from mcrgraph.media import parallel_map, prefetched


@pytest.mark.parametrize("n,batch,workers", [(0, 4, 2), (3, 4, 2), (4, 4, 2), (17, 4, 3), (50, 8, 4), (9, 2, 1)])
def test_prefetched_batches_are_in_order_and_complete(n, batch, workers):
    batches = list(prefetched(lambda x: x * 10, list(range(n)), batch, workers))
    assert [y for b in batches for y in b] == [x * 10 for x in range(n)]
    assert all(len(b) == batch for b in batches[:-1]) and all(len(b) <= batch for b in batches)


def test_errors_surface_unchanged():
    def fn(x):
        if x == 13:
            raise DataError("item 13 is bad")
        return x

    with pytest.raises(DataError, match="item 13 is bad"):
        list(prefetched(fn, list(range(40)), 8, 3))
    with pytest.raises(DataError, match="item 13 is bad"):
        parallel_map(fn, list(range(40)), 3)
