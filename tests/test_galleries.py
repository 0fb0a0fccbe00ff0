"""Galleries: a folder indexed once and kept in $MCRGRAPH_HOME (rows per space, rebuilt when the
space's fingerprint changes), searched through the planner; files only from inside the folder."""
from __future__ import annotations

import json
import os

import pytest
import torch

import mcrgraph
from mcrgraph.errors import DataError, NoPathError, UnknownGalleryError
from mcrgraph.io.progress import observe, progress_bar
from mcrgraph.store import galleries as store
from mcrgraph.tasks.galleries import Shelf, add_gallery


@pytest.fixture
def folder(tmp_path):
    """Six "images" of three concepts: FakeMCR embeds an item by the text before '#', so a
    file's concept is its path up to '#', and the query ``<folder>/k1`` is concept k1."""
    d = tmp_path / "pics"
    (d / "sub").mkdir(parents=True)
    for name in ("k0#a.png", "k0#b.png", "k1#a.png", "sub/k2#a.png", "k1#b.jpg", "k2#b.png"):
        (d / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
    (d / ".hidden.png").write_bytes(b"x")
    (d / "notes.txt").write_text("not an image")
    return d


def test_add_keeps_the_items_their_labels_and_rows(only_fakes, folder, store):
    card = add_gallery("pics", folder, "image")
    assert card.items == sorted(["k0#a.png", "k0#b.png", "k1#a.png", "k1#b.jpg", "k2#b.png", "sub/k2#a.png"])
    assert card.labels == [i.rsplit(".", 1)[0] for i in card.items]  # the file's path without its suffix
    # every plugin space that reads images: fa (image, text) and fc (3d, image)
    assert sorted((r.space, r.modality, r.count, r.dim) for r in card.rows) == [("fa", "image", 6, 8), ("fc", "image", 6, 5)]
    on_disk = json.loads((store / "galleries" / "pics" / "gallery.json").read_text())
    assert on_disk["root"] == str(folder.resolve()) and on_disk["name"] == "pics"


def test_a_pinned_modality_gets_rows_in_that_space_only(only_fakes, folder):
    pinned = add_gallery("pinned", folder, "image@fc")
    assert [r.space for r in pinned.rows] == ["fc"]


def test_search_ranks_the_querys_concept_first(only_fakes, folder):
    add_gallery("pics", folder, "image@fa")
    found = Shelf().search("text", f"{folder}/k1", "pics", 3)
    assert found.path.describe() == "text@fa <-> image@fa (both in fa)"
    assert sorted(h.label for h in found.hits[:2]) == ["k1#a", "k1#b"]
    assert found.hits[0].score == pytest.approx(1.0, abs=1e-5)  # the same concept: the same unit vector
    assert found.hits[2].score < 0.999


def test_rows_are_read_back_not_encoded_again_and_rebuilt_when_the_space_changes(only_fakes, folder, monkeypatch):
    fa = only_fakes["fa"]
    add_gallery("pics", folder, "image@fa")
    fa.calls.clear()
    Shelf().search("text", "q", "pics", 2)
    assert fa.calls == [("text", 1)]  # the query only: the rows came from the gallery
    monkeypatch.setattr(fa, "fingerprint", lambda: "another encoder")
    fa.calls.clear()
    Shelf().search("text", "q", "pics", 2)
    assert ("image", 4) in fa.calls  # rebuilt in batches of 4 (FakeMCR's batch size), from the files
    card = store.read_card("pics")
    assert [r.fingerprint for r in card.rows] == ["another encoder"]


def test_a_shelf_keeps_its_index_until_the_space_changes(only_fakes, folder, monkeypatch):
    add_gallery("pics", folder, "image@fa")
    shelf = Shelf()
    card = shelf.card("pics")
    first = shelf.index(card, only_fakes["fa"], "image")
    assert shelf.index(card, only_fakes["fa"], "image") is first
    monkeypatch.setattr(only_fakes["fa"], "fingerprint", lambda: "changed")
    assert shelf.index(card, only_fakes["fa"], "image") is not first


def test_damaged_rows_are_rebuilt(only_fakes, folder, store):
    card = add_gallery("pics", folder, "image@fa")
    (store / "galleries" / "pics" / "rows" / card.rows[0].file).write_bytes(b"not safetensors")
    found = Shelf().search("text", f"{folder}/k0", "pics", 1)
    assert found.hits[0].label.startswith("k0#")


def test_errors_are_one_line_and_lose_nothing(only_fakes, folder, tmp_path):
    add_gallery("pics", folder, "image@fa")
    with pytest.raises(DataError, match="exists already"):
        add_gallery("pics", folder, "image@fa")
    with pytest.raises(DataError, match="bad gallery name"):
        add_gallery("../up", folder, "image")
    with pytest.raises(mcrgraph.MCRGraphError, match="no space has modality 'smell'"):
        add_gallery("x", folder, "smell")
    with pytest.raises(UnknownGalleryError, match="no gallery named 'nope'"):
        Shelf().search("text", "q", "nope", 1)
    with pytest.raises(NoPathError):
        Shelf().search("audio", "q.wav", "pics", 1)  # fb (audio, text) and fa are not connected
    with pytest.raises(DataError, match="k must be"):
        Shelf().search("text", "q", "pics", 0)
    assert Shelf().card("pics").items  # still there


def test_a_failed_build_leaves_no_half_gallery(only_fakes, folder, monkeypatch):
    def broken(modality, items):
        raise RuntimeError("encoder on fire")

    monkeypatch.setattr(only_fakes["fa"], "encode", broken)
    with pytest.raises(mcrgraph.MCRGraphError, match="encoder on fire"):
        add_gallery("pics", folder, "image@fa")
    assert not store.exists("pics")


def test_files_are_served_only_from_inside_the_folder(only_fakes, folder, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    card = add_gallery("pics", folder, "image@fa")
    assert store.item_file(card, 0) == folder.resolve() / card.items[0]
    for bad in ("../secret.png", str(outside)):  # a card edited by hand cannot reach out either
        tampered = card.model_copy(update={"items": [bad] + card.items[1:]})
        with pytest.raises(DataError, match="outside its folder"):
            store.item_file(tampered, 0)
    os.symlink(outside, folder / "k9#link.png")  # a link in the folder leading out of it
    with pytest.raises(DataError, match="a link leads out"):
        add_gallery("linked", folder, "image@fa")
    with pytest.raises(DataError, match="has items 0 to 5"):
        store.item_file(card, 6)


def test_text_galleries_keep_their_captions(only_fakes, tmp_path):
    captions = tmp_path / "captions.txt"
    captions.write_text("k0 one\nk1 two\n")
    card = add_gallery("caps", captions, "text@fa")
    assert card.root is None and card.items == ["k0 one", "k1 two"] and not card.builtin
    assert Shelf().search("text", "k1 two", "caps", 1).hits[0].item == "k1 two"


def test_progress_observer_sees_every_update_even_with_the_bar_hidden():
    seen = []
    with observe(lambda desc, done, total: seen.append((desc, done, total))):
        with progress_bar(3, "epochs", enabled=False) as bar:
            for _ in range(3):
                bar.update(1)
    with progress_bar(2, "unobserved", enabled=False) as bar:
        bar.update(2)
    assert seen == [("epochs", 0, 3), ("epochs", 1, 3), ("epochs", 2, 3), ("epochs", 3, 3)]


def test_rows_must_match_the_items(only_fakes, folder):
    card = add_gallery("pics", folder, "image@fa")
    with pytest.raises(DataError, match="has 6 items"):
        store.write_rows(card, "fa", "image", "fp", torch.zeros(5, 8))
