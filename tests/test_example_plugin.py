"""The example plugin in examples/plugin-example, loaded by path (it is not installed)."""
import importlib.util
import json
import tomllib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugin-example"
TEXTS = ["A dog runs on the beach", "two cats sleep", ""]
TAGS = ["dog, beach", "cat, golden retriever", ""]


@pytest.fixture
def example():
    spec = importlib.util.spec_from_file_location("mcrgraph_example", EXAMPLE / "mcrgraph_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert mcrgraph.register(module) == ["example-bow"]
    yield module
    mcrgraph.unregister(module)


def test_plugins_json_lists_it(example):
    result = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = {p["name"]: p for p in json.loads(result.output)}
    spaces = data["mcrgraph_example"].pop("spaces")
    assert data["mcrgraph_example"] == {"name": "mcrgraph_example", "source": "run time", "mcrs": ["example-bow"], "error": None}
    assert [(x["name"], x["modalities"], x["error"]) for x in spaces] == [("example-bow", ["text", "tags"], None)]


def test_weights_are_created_on_first_encode(example):
    space = mcrgraph.get_mcr("example-bow")
    assert space._tables is None
    mcrgraph.embed(space, "text", ["hello"])
    assert space._tables is not None


@pytest.mark.parametrize("modality,items", [("text", TEXTS), ("tags", TAGS)])
def test_embeddings_meet_the_contract(example, modality, items):
    space = mcrgraph.get_mcr("example-bow")
    emb = mcrgraph.embed(space, modality, items)
    assert emb.shape == (3, 32) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    # deterministic: the same in a second call and in a fresh instance (the tables are seeded)
    assert torch.equal(emb, mcrgraph.embed(space, modality, items))
    assert torch.equal(emb, mcrgraph.embed(example.ExampleBoW(), modality, items))
    # a batch of 3 equals the items encoded one by one
    assert torch.equal(emb, torch.cat([mcrgraph.embed(space, modality, [item]) for item in items]))
    assert torch.equal(emb, mcrgraph.embed(space, modality, items, batch_size=1))


def test_words_and_tags_behave_like_bags(example):
    space = mcrgraph.get_mcr("example-bow")
    text = mcrgraph.embed(space, "text", ["Dog BEACH", "beach dog", "cat"])
    assert torch.allclose(text[0], text[1])  # case and order do not matter
    assert float(text[0] @ text[2]) < 0.9
    tags = mcrgraph.embed(space, "tags", ["dog", "dog , ", "golden retriever", "golden, retriever"])
    assert torch.allclose(tags[0], tags[1])  # blank tags are ignored
    assert not torch.allclose(tags[2], tags[3])  # a multi-word tag is one token
    # each modality has its own table: the same word is a different vector as a tag
    assert not torch.allclose(mcrgraph.embed(space, "text", ["dog"]), tags[:1])


def test_non_string_items_are_a_clear_error(example):
    with pytest.raises(mcrgraph.DataError, match="example-bow encodes strings"):
        mcrgraph.embed(mcrgraph.get_mcr("example-bow"), "text", [3])


def test_fingerprint_is_stable_and_needs_no_weights(example):
    a, b = example.ExampleBoW(), example.ExampleBoW()
    mcrgraph.embed(b, "text", ["hello"])
    assert a.fingerprint() == b.fingerprint() and a._tables is None


def test_pyproject_declares_the_entry_point():
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "mcrgraph-example"
    assert "mcrgraph" in meta["project"]["dependencies"]
    assert meta["project"]["entry-points"]["mcrgraph"] == {"example": "mcrgraph_example"}
