"""GalleryIndex: the exact kind matches mcrgraph.ranking.topk; half precision and FAISS are measured
against it (recall@10), and bad input gets clear errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.ranking.index import GalleryIndex
from mcrgraph.ranking.topk import topk


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def clustered(n, d, clusters, seed):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(clusters, d, generator=g), dim=1)
    which = torch.randint(0, clusters, (n,), generator=g)
    return F.normalize(centres[which] + 0.05 * torch.randn(n, d, generator=g), dim=1)  # noise of norm ~0.4


def recall(found, exact):
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, exact)) / exact.numel()


def test_exact_is_topk():
    g, q = unit(3000, 64, 0), unit(20, 64, 1)
    v, i = GalleryIndex(g).search(q, 10)
    ev, ei = topk(q, g, 10)
    assert torch.equal(i, ei) and torch.equal(v, ev)


@pytest.mark.parametrize("kind", ["fp16", "bf16"])
def test_half_precision_keeps_recall(kind):
    g, q = unit(5000, 128, 2), unit(50, 128, 3)
    _, exact = topk(q, g, 10)
    _, found = GalleryIndex(g, kind).search(q, 10)
    assert recall(found, exact) >= 0.95


def test_faiss_flat_is_exact_and_ivf_is_close():
    g, q = clustered(6000, 64, 40, 4), clustered(40, 64, 40, 5)
    ev, exact = topk(q, g, 10)
    fv, flat = GalleryIndex(g, "faiss-flat").search(q, 10)
    assert recall(flat, exact) == 1.0
    torch.testing.assert_close(fv, ev, atol=1e-5, rtol=1e-5)
    ivf = GalleryIndex(g, "faiss-ivf", nlist=60, nprobe=60)  # every cell probed: exhaustive
    assert recall(ivf.search(q, 10)[1], exact) == 1.0
    default = GalleryIndex(g, "faiss-ivf")
    assert default.nprobe == 16 and recall(default.search(q, 10)[1], exact) >= 0.9
    few = GalleryIndex(g, "faiss-ivf", nlist=60, nprobe=1)  # one cell per query: misses neighbours in others
    before = recall(few.search(q, 10)[1], exact)
    few.nprobe = 1000  # changed on the built index; capped at the 60 cells
    assert before < 1.0 and recall(few.search(q, 10)[1], exact) == 1.0
    few.nprobe = 0
    with pytest.raises(mcrgraph.ConfigError, match="nprobe must be a whole number of at least 1"):
        few.search(q, 10)


def test_ivfpq_trades_recall_for_bytes():
    g, q = clustered(6000, 64, 40, 4), clustered(40, 64, 40, 5)
    _, exact = topk(q, g, 10)
    default = GalleryIndex(g, "faiss-ivfpq")  # 8 bytes per 64-d row, 16 of 77 cells probed
    assert default.nprobe == 16 and default._faiss.pq.M == 8
    scores, found = default.search(q, 10)
    assert found.shape == (40, 10) and (scores[:, :-1] >= scores[:, 1:]).all()
    finer = GalleryIndex(g, "faiss-ivfpq", pq_m=32, nprobe=1000)  # 32 bytes per row, every cell
    low, high = recall(found, exact), recall(finer.search(q, 10)[1], exact)
    assert 0.3 <= low < high and high >= 0.85
    with pytest.raises(mcrgraph.ConfigError, match="pq_m must be a whole number that divides the dimension 64"):
        GalleryIndex(g, "faiss-ivfpq", pq_m=7)
    with pytest.raises(mcrgraph.ConfigError, match="at least 256 gallery rows, got 100"):
        GalleryIndex(g[:100], "faiss-ivfpq")


def test_rerank_gives_back_recall_with_exact_scores():
    g, q = clustered(6000, 64, 40, 4), clustered(40, 64, 40, 5)
    ev, exact = topk(q, g, 10)
    plain = recall(GalleryIndex(g, "faiss-ivfpq").search(q, 10)[1], exact)
    reranked = GalleryIndex(g, "faiss-ivfpq", rerank=200)
    scores, found = reranked.search(q, 10)
    assert plain < 0.9 and recall(found, exact) >= 0.97
    torch.testing.assert_close(scores, (q.unsqueeze(1) * g[found]).sum(-1))  # float32 scores of the rows returned
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    half = GalleryIndex(g, "fp16", rerank=50).search(q, 10)  # fp16 ranks, float32 scores
    assert recall(half[1], exact) == 1.0 and torch.allclose(half[0], ev, atol=1e-6)
    few = GalleryIndex(g, "faiss-ivf", nlist=60, nprobe=1, rerank=5)  # ~100 rows per cell, 300 asked for
    s, i = few.search(q, 300)
    assert (i == -1).any() and ((i == -1) == (s == float("-inf"))).all()
    assert ((i[:, 1:] == -1) | (i[:, :-1] != -1)).all()  # the missing rows come last
    reranked.rerank = None  # a search-time knob: off, the codes' own ranking
    assert recall(reranked.search(q, 10)[1], exact) == plain
    unkept = GalleryIndex(g, "fp16")
    unkept.rerank = 10
    with pytest.raises(mcrgraph.ConfigError, match="built without rerank"):
        unkept.search(q, 10)
    with pytest.raises(mcrgraph.ConfigError, match="rerank applies to the approximate index kinds"):
        GalleryIndex(g, "exact", rerank=10)
    with pytest.raises(mcrgraph.ConfigError, match="rerank must be a whole number of at least 1"):
        GalleryIndex(g, "fp16", rerank=0)


def test_rerank_reads_a_memory_mapped_gallery_in_place(tmp_path):
    g, q = clustered(3000, 32, 20, 10), clustered(10, 32, 20, 11)
    path = tmp_path / "gallery.f32"
    g.numpy().tofile(path)
    mapped = torch.from_file(str(path), size=g.numel()).view(g.shape)
    index = GalleryIndex(mapped, "fp16", rerank=30)
    assert index._rows.data_ptr() == mapped.data_ptr()  # no copy of the float32 rows
    assert torch.equal(index.search(q, 5)[1], topk(q, g, 5)[1])


def test_bad_input_is_explained():
    g = unit(100, 16, 6)
    with pytest.raises(mcrgraph.ConfigError, match="unknown index kind 'hnsw'"):
        GalleryIndex(g, "hnsw")
    bad = g.clone()
    bad[7, 3] = float("nan")
    with pytest.raises(mcrgraph.DataError, match="gallery row 7"):
        GalleryIndex(bad, "fp16")
    with pytest.raises(mcrgraph.DataError, match="empty"):
        GalleryIndex(g[:0])
    idx = GalleryIndex(g, "faiss-flat")
    with pytest.raises(mcrgraph.DataError, match=r"\(n, 16\)"):
        idx.search(unit(2, 8, 7), 3)
    with pytest.raises(mcrgraph.ConfigError, match="from 1 to the gallery's 100"):
        idx.search(unit(2, 16, 7), 101)


def test_search_takes_an_index(only_fakes):
    from conftest import CAPTIONS, QUICK

    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    gallery = [f"k{i}#9" for i in range(20)]
    exact = mcrgraph.search("audio", ["k3#7", "k5#7"], "image", gallery, top=5)
    for kind in ("fp16", "faiss-flat"):
        hits = mcrgraph.search("audio", ["k3#7", "k5#7"], "image", gallery, top=5, index=kind)
        assert [[h.index for h in row] for row in hits] == [[h.index for h in row] for row in exact]


def test_faiss_sq8_and_hnsw_keep_recall():
    g, q = clustered(6000, 64, 40, 8), clustered(40, 64, 40, 9)
    ev, exact = topk(q, g, 10)
    sv, sq8 = GalleryIndex(g, "faiss-sq8").search(q, 10)
    assert recall(sq8, exact) >= 0.9
    assert (sv - ev).abs().max() < 0.05  # 8-bit values: scores close, not equal
    default = GalleryIndex(g, "faiss-hnsw")  # tight clusters are hard for the graph's greedy walk
    assert default.ef_search == 128 and recall(default.search(q, 10)[1], exact) >= 0.85
    default.ef_search = 1024  # more candidates per query: the knob that buys recall back
    assert recall(default.search(q, 10)[1], exact) >= 0.99
    assert GalleryIndex(g, "faiss-hnsw", ef_search=1).search(q, 10)[1].shape == (40, 10)  # ef raised to k
    with pytest.raises(mcrgraph.ConfigError, match="hnsw_m"):
        GalleryIndex(g, "faiss-hnsw", hnsw_m=1)
    with pytest.raises(mcrgraph.ConfigError, match="ef_search"):
        GalleryIndex(g, "faiss-hnsw", ef_search=0)
