"""Zero-shot classification and retrieval (mcrgraph/tasks/retrieval.py) and their CLI commands."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli import drawing
from mcrgraph.cli import cli
from conftest import CAPTIONS, QUICK

IMAGES = [f"k{i}#{j}" for j in range(3) for i in range(20)]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


class TableMCR(mcrgraph.MCR):
    """image/text space whose embeddings are a fixed table: exact answers for exact tests."""

    name, modalities, dim = "table", ("image", "text"), 3

    def __init__(self, table):
        self.table = {k: F.normalize(torch.tensor(v, dtype=torch.float32), dim=0) for k, v in table.items()}

    def encode(self, modality, items):
        return torch.stack([self.table[i] for i in items])


class ColourMCR(mcrgraph.MCR):
    """image/text space over real image files: an image is its mean colour; "red", "green" and
    "blue" are the three axes."""

    name, modalities, dim = "colour", ("image", "text"), 3
    AXES = {"red": 0, "green": 1, "blue": 2}

    def encode(self, modality, items):
        from PIL import Image
        import numpy as np

        rows = []
        for item in items:
            if modality == "text":
                rows.append(F.one_hot(torch.tensor(self.AXES[item]), 3).float())
            else:
                with Image.open(item) as im:
                    rows.append(torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0)))
        return F.normalize(torch.stack(rows), dim=1)


def only(*spaces):
    mcrgraph.unregister("synthetic")
    mcrgraph.unregister("mini")
    for s in spaces:
        mcrgraph.register(s)


@pytest.fixture
def pictures(tmp_path):
    """A folder of four PNGs: reddish, greenish, bluish and dark red."""
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, rgb in {"a_red": (220, 40, 30), "b_green": (30, 200, 60), "c_blue": (20, 50, 230), "d_darkred": (120, 10, 10)}.items():
        Image.new("RGB", (24, 16), rgb).save(folder / f"{name}.png")
    return folder


# -- classify ------------------------------------------------------------------------------------


def test_classify_picks_each_items_own_label(only_fakes):
    # labels in another order than the items, and an extra label: a constant answer would fail
    results = mcrgraph.classify("image", ["k3#1", "k7#2", "k1#0"], ["k7", "k1", "k9", "k3"], templates=["{}"], top=None)
    assert [r.label for r in results] == ["k3", "k7", "k1"]
    assert [r.item for r in results] == ["k3#1", "k7#2", "k1#0"]
    for r in results:
        probs = [p for _, p in r.ranked]
        assert sorted(label for label, _ in r.ranked) == ["k1", "k3", "k7", "k9"]
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-9) and probs == sorted(probs, reverse=True)
        assert r.probability == probs[0] > 0.99
    top2 = mcrgraph.classify("image", ["k3#1"], ["k7", "k1", "k9", "k3"], templates=["{}"], top=2)
    assert [label for label, _ in top2[0].ranked] == [label for label, _ in results[0].ranked[:2]]


def test_templates_are_averaged_then_renormalised():
    # the item sits between the two templates of "cat"; "dog" is close to it under both templates
    x = [1.0, 1.0, 0.0]
    dog = [0.9 / math.sqrt(2), 0.9 / math.sqrt(2), math.sqrt(1 - 0.81)]  # cosine 0.9 to x
    only(TableMCR({"item": x, "a cat": [1, 0, 0], "the cat": [0, 1, 0], "a dog": dog, "the dog": dog}))
    one = mcrgraph.classify("image", ["item"], ["cat", "dog"], templates=["a {}"])[0]
    assert one.label == "dog"  # cosine 0.707 for "a cat" against 0.9
    both = mcrgraph.classify("image", ["item"], ["cat", "dog"], templates=["a {}", "the {}"])[0]
    assert both.label == "cat"  # the normalised mean of e1 and e2 is the item itself (cosine 1)
    assert math.isclose(both.probability, 1 / (1 + math.exp(-100 * (1 - 0.9))), rel_tol=1e-5)
    warm = mcrgraph.classify("image", ["item"], ["cat", "dog"], templates=["a {}", "the {}"], logit_scale=10)[0]
    assert math.isclose(warm.probability, 1 / (1 + math.exp(-10 * (1 - 0.9))), rel_tol=1e-5)


def test_default_template_is_a_label(only_fakes):
    fa = only_fakes["fa"]
    mcrgraph.classify("image", ["k1"], ["k1", "k2"])
    assert ("text", 2) in fa.calls  # "a k1", "a k2": one prompt per label


def test_classify_in_the_synthetic_world_beats_chance_by_far():
    labels = [f"c{i}" for i in range(50)]
    images = [f"c{i}#101" for i in range(50)]  # held-out variants
    results = mcrgraph.classify("image@synth-clip", images, labels, templates=["{}#0", "{}#1", "{}#2"])
    accuracy = sum(r.label == lab for r, lab in zip(results, labels)) / len(labels)
    assert accuracy >= 0.8, accuracy  # chance 0.02
    assert all(len(r.ranked) == 5 for r in results)


@pytest.mark.parametrize("kwargs,error,msg", [
    (dict(templates=["a photo"]), mcrgraph.ConfigError, r"template 'a photo' must contain \{\} exactly once.*it has 0"),
    (dict(templates=["{} and {}"]), mcrgraph.ConfigError, "it has 2"),
    (dict(templates=[]), mcrgraph.ConfigError, "no templates given"),
    (dict(templates="a {}"), mcrgraph.ConfigError, "wrap it"),
    (dict(labels=[]), mcrgraph.DataError, "at least two labels.*got none"),
    (dict(labels=["k1"]), mcrgraph.DataError, "at least two labels.*only 'k1'"),
    (dict(labels=["k1", "k2", "k1 "]), mcrgraph.DataError, r"label 'k1' is given twice \(labels 1 and 3\)"),
    (dict(labels=["k1", "  "]), mcrgraph.DataError, "label 2 is blank"),
    (dict(labels="k1"), mcrgraph.DataError, "wrap it"),
    (dict(labels=["k1", 2]), mcrgraph.DataError, "label 2 is a int"),
    (dict(items=[]), mcrgraph.DataError, "no items given"),
    (dict(items="k1"), mcrgraph.DataError, "wrap it"),
    (dict(top=0), mcrgraph.ConfigError, "top must be a whole number >= 1"),
    (dict(logit_scale=0), mcrgraph.ConfigError, "logit_scale must be a positive number"),
    (dict(modality="smell"), mcrgraph.UnknownModalityError, "no space has modality 'smell'; known modalities: 3d, audio, image, text"),
    (dict(modality="image@nope"), mcrgraph.UnknownMCRError, "no space named 'nope'"),
])
def test_classify_errors(only_fakes, kwargs, error, msg):
    args = dict(modality="image", items=["k1"], labels=["k1", "k2"]) | kwargs
    with pytest.raises(error, match=msg):
        mcrgraph.classify(args.pop("modality"), args.pop("items"), args.pop("labels"), **args)
    assert not only_fakes["fa"].calls  # refused before encoding anything


def test_classify_without_a_path_says_which_connect_would_make_one(only_fakes):
    with pytest.raises(mcrgraph.NoPathError, match="no trained space covers 3d and text") as e:
        mcrgraph.classify("3d", ["k1"], ["k1", "k2"], templates=["{}"])
    assert e.value.steps == ["mcrgraph connect fc fa --via image --items IMAGE_ITEMS"]
    mcrgraph.connect("fa", "fc", via="image", items=IMAGES, **QUICK)
    results = mcrgraph.classify("3d", ["k1#9", "k2#9"], ["k1", "k2", "k3"], templates=["{}"], top=None)
    assert mcrgraph.graph().plan("3d", "text").describe() == "3d@fc -> fa+fc <- text@fa"
    assert all(math.isclose(sum(p for _, p in r.ranked), 1.0, abs_tol=1e-9) for r in results)


def test_classify_along_a_given_path(only_fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, **QUICK)
    g = mcrgraph.graph()
    path = g.plan("audio", "text@fa")  # the labels' text through fa, not fb's own text
    assert path.node == "fa+fb"
    before = len(only_fakes["fa"].calls)
    mcrgraph.classify("audio", ["k1"], ["k1", "k2"], templates=["{}"], path=path)
    assert only_fakes["fa"].calls[before:] == [("text", 2)]
    with pytest.raises(mcrgraph.ConfigError, match=r"the path compares audio and text@fa, not image and text; plan one with"):
        mcrgraph.classify("image", ["k1"], ["k1", "k2"], path=path)


def test_a_template_the_encoder_refuses_names_the_prompt():
    with pytest.raises(mcrgraph.DataError, match=r"cannot embed the label texts .*e.g. 'a c1'.*change the labels or the templates"):
        mcrgraph.classify("image@synth-clip", ["c1#0"], ["c1", "c2"])


# -- search --------------------------------------------------------------------------------------


def test_search_ranks_the_gallery(only_fakes):
    gallery = [f"k{i}#5" for i in range(8)]
    hits = mcrgraph.search("image", ["k3#1", "k6#2"], "text", gallery, top=3)
    assert [h[0].item for h in hits] == ["k3#5", "k6#5"]
    sim = mcrgraph.graph().similarity("image", ["k3#1", "k6#2"], "text", gallery)
    for row, query_hits in zip(sim, hits):
        assert len(query_hits) == 3
        assert [h.index for h in query_hits] == row.argsort(descending=True)[:3].tolist()
        assert all(gallery[h.index] == h.item and math.isclose(h.score, float(row[h.index]), abs_tol=1e-6) for h in query_hits)
    assert len(mcrgraph.search("image", ["k3"], "text", gallery, top=100)[0]) == 8  # top beyond the gallery: all of it
    assert len(mcrgraph.search("image", ["k3"], "text", gallery, top=None)[0]) == 8


def test_search_reuses_cached_gallery_embeddings(only_fakes):
    fa = only_fakes["fa"]
    gallery = [f"k{i}#5" for i in range(10)]
    mcrgraph.search("image", ["k1"], "text", gallery)
    first = [c for c in fa.calls if c[0] == "text"]
    assert sum(n for _, n in first) == 10
    mcrgraph.search("image", ["k2", "k3"], "text", gallery)  # new queries, same gallery
    assert [c for c in fa.calls if c[0] == "text"] == first
    assert sum(n for m, n in fa.calls if m == "image") == 3


def test_search_through_a_connected_space(only_fakes):
    with pytest.raises(mcrgraph.NoPathError, match="mcrgraph connect fb fa --via text"):
        mcrgraph.search("audio", ["k1"], "image", ["k1"])
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, **QUICK)
    gallery = [f"k{i}#8" for i in range(20)]
    hits = mcrgraph.search("audio", ["k1#9", "k2#9"], "image", gallery, top=5)
    assert len(hits) == 2 and all(len(h) == 5 for h in hits)
    assert all(a.score >= b.score for h in hits for a, b in zip(h, h[1:]))
    images_encoded = sum(n for m, n in only_fakes["fa"].calls if m == "image")
    mcrgraph.search("audio", ["k3#9"], "image", gallery, top=5)  # the connected space's parent caches the gallery
    assert sum(n for m, n in only_fakes["fa"].calls if m == "image") == images_encoded
    path = mcrgraph.graph().plan("audio", "image")
    assert [h.index for h in mcrgraph.search("audio", ["k1#9"], "image", gallery, top=5, path=path)[0]] == [h.index for h in hits[0]]
    with pytest.raises(mcrgraph.ConfigError, match="the path compares audio and image, not text and image"):
        mcrgraph.search("text", ["k1"], "image", gallery, path=path)


def test_search_across_a_trained_connector_finds_the_same_concept(only_fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, epochs=60, batch_size=16)
    hits = mcrgraph.search("audio", [f"k{i}#9" for i in range(20)], "image", [f"k{i}#8" for i in range(20)], top=5)
    r1 = sum(h[0].index == i for i, h in enumerate(hits)) / 20
    assert r1 >= 0.5, r1  # chance 0.05; untrained heads get about that


@pytest.mark.parametrize("kwargs,error,msg", [
    (dict(queries=[]), mcrgraph.DataError, "no queries given"),
    (dict(gallery=[]), mcrgraph.DataError, "no gallery given"),
    (dict(gallery="k1"), mcrgraph.DataError, "wrap it"),
    (dict(top=-1), mcrgraph.ConfigError, "top must be"),
    (dict(gallery_modality="smell"), mcrgraph.UnknownModalityError, "no space has modality 'smell'"),
])
def test_search_errors(only_fakes, kwargs, error, msg):
    args = dict(query_modality="image", queries=["k1"], gallery_modality="text", gallery=["k1", "k2"]) | kwargs
    with pytest.raises(error, match=msg):
        mcrgraph.search(**args)


def test_search_real_image_files(pictures):
    only(ColourMCR())
    files = sorted(str(p) for p in pictures.iterdir())
    hits = mcrgraph.search("text", ["red", "blue"], "image", files, top=2)
    assert [h.item.rsplit("/", 1)[-1] for h in hits[0]] == ["d_darkred.png", "a_red.png"]  # the purer red first
    assert hits[1][0].item.endswith("c_blue.png")
    results = mcrgraph.classify("image", files, ["red", "green", "blue"], templates=["{}"])
    assert [r.label for r in results] == ["red", "green", "blue", "red"]


# -- command line --------------------------------------------------------------------------------


@pytest.fixture
def labels_file(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("k7\nk1\nk9\nk3\n\n")  # trailing blank lines are fine
    return p


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text``, as lists of stripped cells."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")]


def test_cli_classify_table(run, only_fakes, labels_file):
    out = run("classify", "--image", "k3#1", "--image=k7#2", "--labels", labels_file, "--template", "{}", "--top", "2", "--no-progress").output
    assert out.startswith("path: image@fa <-> text@fa (both in fa)\n") and "probability" in out
    first, second = out.split("image k7#2")
    assert "image k3#1" in first
    rows_a, rows_b = table_rows(first), table_rows(second)
    assert len(rows_a) == len(rows_b) == 2  # --top 2
    assert rows_a[0] == ["k3", "1.0000"] and rows_b[0] == ["k7", "1.0000"]
    assert float(rows_a[1][1]) < 0.001 and rows_a[1][0] in ("k7", "k1", "k9")


def test_cli_classify_json(run, only_fakes, labels_file, tmp_path):
    listed = tmp_path / "items.txt"
    listed.write_text("k9#1\nk1#4\n")
    result = run("classify", "--image", "k3#1", "--image", f"@{listed}", "--labels", labels_file, "--label", "k5",
                 "--template", "{}", "--template", "{}#x", "--json", "--top", "10")
    data = json.loads(result.stdout)
    assert data["path"] == "image@fa <-> text@fa (both in fa)" and data["labels"] == 5
    assert [r["item"] for r in data["results"]] == ["k3#1", "k9#1", "k1#4"]
    assert [r["labels"][0]["label"] for r in data["results"]] == ["k3", "k9", "k1"]
    assert all(len(r["labels"]) == 5 and math.isclose(sum(x["probability"] for x in r["labels"]), 1, abs_tol=1e-9) for r in data["results"])


def test_cli_classify_a_folder_of_pictures(run, pictures):
    only(ColourMCR())
    data = json.loads(run("classify", "--image", pictures, "--label", "red", "--label", "green", "--label", "blue", "--template", "{}",
                          "--json").stdout)
    assert [(r["item"].rsplit("/", 1)[-1], r["labels"][0]["label"]) for r in data["results"]] == [
        ("a_red.png", "red"), ("b_green.png", "green"), ("c_blue.png", "blue"), ("d_darkred.png", "red")]


@pytest.mark.parametrize("content,msg", [
    ("k1\n\nk2\n", "labels.txt: line 2 is blank; give one label per line"),
    ("k1\nk2\nk1\n", "labels.txt: line 3 repeats 'k1' from line 1; give each label once"),
    ("\n \n", "has no labels (it is empty or blank)"),
    ("k1\n", "at least two labels"),
])
def test_cli_classify_bad_labels_file(run, only_fakes, tmp_path, content, msg):
    p = tmp_path / "labels.txt"
    p.write_text(content)
    result = run("classify", "--image", "k1", "--labels", p, ok=False)
    assert msg in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


@pytest.mark.parametrize("args,msg", [
    (["classify", "--image", "k1"], "give the labels: --labels FILE (one per line) or --label NAME"),
    (["classify", "--image", "k1", "--audio", "k2", "--label", "a", "--label", "b"], "all of one modality"),
    (["classify", "--label", "a", "--label", "b"], "got none"),
    (["classify", "--image", "k1", "--labels", "missing.txt"], "labels file 'missing.txt' does not exist"),
    (["classify", "--image", "k1", "--label", "a", "--label", "a"], "label 'a' is given twice"),
    (["classify", "--image", "k1", "--label", "a", "--label", "b", "--template", "a photo"], "must contain {} exactly once"),
    (["classify", "--3d", "k1", "--label", "a", "--label", "b"], "mcrgraph connect fc fa --via image"),
    (["classify", "--smell", "k1", "--label", "a", "--label", "b"], "no space has modality 'smell'"),
    (["classify", "--image", "@missing.txt", "--label", "a", "--label", "b"], "items file 'missing.txt' does not exist"),
    (["search", "--image", "k1"], "give the gallery as --MODALITYs DIR|@list.txt"),
    (["search", "--images", "k1"], "give the queries as --MODALITY ITEM"),
    (["search", "--image", "k1", "--audio", "k2", "--texts", "k1"], "all of one modality"),
    (["search", "--image", "k1", "--imagez", "x"], "--imagez: no space has modality 'imagez'"),
    (["search", "--audio", "k1", "--images", "k1"], "mcrgraph connect fb fa --via text"),
    (["search", "--image", "k1", "--texts", "@missing.txt"], "items file 'missing.txt' does not exist"),
    (["search", "--image"], "--image needs an item"),
])
def test_cli_task_errors_are_one_clear_line(run, only_fakes, args, msg):
    result = run(*args, ok=False)
    assert result.exit_code in (1, 2) and msg in result.output
    assert "Traceback" not in result.output


def test_cli_help_explains_with_examples(run):
    help_text = run("search", "--help").output
    assert "--MODALITYs" in help_text and "--gallery-MODALITY" in help_text and "--images photos/" in help_text
    assert "mcrgraph classify --3d chair.ply" in run("classify", "--help").output
    top = run("--help").output
    assert "classify" in top and "search" in top


def test_cli_search_table_and_plural_and_gallery_flags(run, only_fakes, tmp_path):
    listed = tmp_path / "gallery.txt"
    listed.write_text("\n".join(f"k{i}#5" for i in range(6)))
    out = run("search", "--image", "k4#1", "--image", "k2#1", "--texts", f"@{listed}", "--top", "3", "--no-progress").output
    assert out.startswith("path: image@fa <-> text@fa (both in fa)\n")
    first, second = out.split("image k2#1: best 3 of 6 text items")
    assert "image k4#1: best 3 of 6 text items" in first
    rows_a, rows_b = table_rows(first), table_rows(second)
    assert [r[0] for r in rows_a] == [r[0] for r in rows_b] == ["1", "2", "3"]
    assert rows_a[0][1:] == ["1.0000", "k4#5"] and rows_b[0][1:] == ["1.0000", "k2#5"]
    assert float(rows_a[0][1]) >= float(rows_a[1][1]) >= float(rows_a[2][1])
    same = run("search", "--image", "k4#1", "--image", "k2#1", "--gallery-text", f"@{listed}", "--top", "3", "--no-progress").output
    assert same == out


@pytest.mark.parametrize("kind", ["fp16", "faiss-sq8", "faiss-hnsw"])
def test_cli_search_through_a_gallery_index(run, only_fakes, tmp_path, kind):
    listed = tmp_path / "gallery.txt"
    listed.write_text("\n".join(f"k{i}#5" for i in range(30)))
    args = ("search", "--image", "k4#1", "--image", "k7#1", "--texts", f"@{listed}", "--top", "3", "--json")
    exact, approx = json.loads(run(*args).stdout), json.loads(run(*args, "--index", kind).stdout)
    # each query's own concept is far ahead of the rest: every index finds it first
    assert [r["hits"][0]["item"] for r in approx["results"]] == [r["hits"][0]["item"] for r in exact["results"]] == ["k4#5", "k7#5"]
    bad = run(*args, "--index", "hnsw", ok=False)
    assert bad.exit_code == 2 and "faiss-hnsw" in bad.output


def test_cli_search_rerank_scores_exactly(run, only_fakes, tmp_path):
    listed = tmp_path / "gallery.txt"
    listed.write_text("\n".join(f"k{i}#5" for i in range(30)))
    args = ("search", "--image", "k4#1", "--image", "k7#1", "--texts", f"@{listed}", "--top", "3", "--json")
    exact = json.loads(run(*args).stdout)["results"]
    reranked = json.loads(run(*args, "--index", "fp16", "--rerank", "10").stdout)["results"]
    assert [[h["item"] for h in r["hits"]] for r in reranked] == [[h["item"] for h in r["hits"]] for r in exact]
    assert all(math.isclose(a["score"], b["score"], abs_tol=1e-6) for r, e in zip(reranked, exact) for a, b in zip(r["hits"], e["hits"]))
    bad = run(*args, "--rerank", "10", ok=False)
    assert bad.exit_code != 0 and "rerank applies to the approximate index kinds" in bad.output


def test_cli_search_with_ivfpq_on_a_small_gallery_says_why_not(run, only_fakes, tmp_path):
    listed = tmp_path / "gallery.txt"
    listed.write_text("\n".join(f"k{i}#5" for i in range(30)))
    r = run("search", "--image", "k4#1", "--texts", f"@{listed}", "--index", "faiss-ivfpq", ok=False)
    assert r.exit_code != 0 and "needs at least 256 gallery rows, got 30; use faiss-ivf or exact" in r.output


def test_cli_search_json_through_a_connector(run, only_fakes, tmp_path):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, **QUICK)
    listed = tmp_path / "gallery.txt"
    listed.write_text("\n".join(f"k{i}#8" for i in range(12)))
    data = json.loads(run("search", "--audio", "k1#9", "--audio", "k2#9", "--images", f"@{listed}", "--top", "4", "--json").stdout)
    assert data["path"] == "audio@fb -> fa+fb <- image@fa" and data["gallery"] == 12
    assert data["query_modality"] == "audio" and data["gallery_modality"] == "image"
    hits = mcrgraph.search("audio", ["k1#9", "k2#9"], "image", [f"k{i}#8" for i in range(12)], top=4)
    assert [[(h["rank"], h["index"], h["item"]) for h in r["hits"]] for r in data["results"]] == [
        [(rank, h.index, h.item) for rank, h in enumerate(q, 1)] for q in hits]
    assert all(math.isclose(h["score"], x.score, abs_tol=1e-6) for r, q in zip(data["results"], hits) for h, x in zip(r["hits"], q))


def test_cli_search_png_grid_of_pictures(run, pictures, tmp_path, monkeypatch):
    only(ColourMCR())
    saved = []
    real_save = drawing._save
    monkeypatch.setattr(drawing, "_save", lambda fig, path: (saved.append(path), real_save(fig, path)))
    png = tmp_path / "grid.png"
    result = run("search", "--text", "red", "--text", "green", "--images", pictures, "--top", "3", "--png", png, "--no-progress")
    assert f"wrote {png}" in result.output and saved == [str(png)]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left behind
    assert drawing._thumbnail(str(pictures / "a_red.png")).shape == (16, 24, 3)
    assert drawing._thumbnail("k1#3") is None and drawing._thumbnail(123) is None


def test_png_grid_of_names_caps_the_rows(only_fakes, tmp_path):
    queries = [f"k{i}" for i in range(30)]
    hits = mcrgraph.search("image", queries, "text", [f"k{i}#5" for i in range(8)], top=4)
    drawing.draw_retrieval(queries, hits, tmp_path / "names.png", title="names", max_rows=5)
    assert (tmp_path / "names.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(mcrgraph.DataError, match="nothing to draw"):
        drawing.draw_retrieval([], [], tmp_path / "empty.png")
