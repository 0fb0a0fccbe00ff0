import json

import pytest
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli import cli
from conftest import CAPTIONS


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


@pytest.fixture
def captions(tmp_path):
    p = tmp_path / "captions.txt"
    p.write_text("\n".join(CAPTIONS) + "\n\n")
    return p


def test_help_explains_every_command(run):
    out = run("--help").output
    for cmd in ("plugins", "graph", "connect", "plan", "similarity", "connectors", "synthetic-eval"):
        assert cmd in out
    assert "--via" in run("connect", "--help").output


def test_plugins_lists_builtins(run, fakes):
    out = run("plugins").output
    assert "synthetic" in out and "built-in" in out and "synth-clip" in out and "fa" in out
    data = json.loads(run("plugins", "--json").output)
    synthetic = next(p for p in data if p["name"] == "synthetic")
    assert synthetic["source"] == "built-in" and synthetic["mcrs"] == ["synth-clip", "synth-clap", "synth-ulip"] and synthetic["error"] is None
    assert [(x["name"], x["dim"], x["weights_present"], x["weights_hint"]) for x in synthetic["spaces"]][0] == ("synth-clip", 64, None, None)


def test_connect_plan_similarity_connectors(run, fakes, captions, tmp_path, store):
    images = tmp_path / "images.txt"
    images.write_text("\n".join(f"k{i}#5" for i in range(20)))
    sounds = tmp_path / "sounds.txt"
    sounds.write_text("\n".join(f"k{i}#6" for i in range(20)))
    out = run("connect", "fa", "fb", "--via", "text", "--items", str(captions), "--memory", f"image={images}",
              "--memory", f"audio={sounds}", "--epochs", "2", "--batch-size", "16", "--set", "intra_weight=0.5", "--no-progress").output
    assert "stored connector fa+fb" in out and "R@1" in out
    card = json.loads(run("connectors", "show", "fa+fb").output)
    assert card["config"]["intra_weight"] == 0.5 and card["config"]["epochs"] == 2
    assert run("plan", "audio", "image").output.strip() == "audio@fb -> fa+fb <- image@fa"
    out = run("similarity", "--audio", "k1", "--audio", "k2", "--image=k1").output
    assert "path: audio@fb -> fa+fb <- image@fa" in out and out.count("k1") == 2
    assert "fa+fb" in run("connectors").output
    assert "removed" in run("connectors", "remove", "fa+fb", "--yes").output
    assert not (store / "connectors" / "fa+fb").exists()


def test_graph_table_json_and_png(run, fakes, tmp_path):
    assert "overlaps" in run("graph").output
    data = json.loads(run("graph", "--json").output)
    assert {"a": "fa", "b": "fb", "via": "text", "trained": False} in data["overlaps"]
    png = tmp_path / "g.png"
    run("graph", "--png", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,msg", [
    (["connect", "fa", "nope", "--via", "text"], "no space named 'nope'"),
    (["connect", "fa", "fb", "--via", "text", "--items", "missing.txt"], "items file 'missing.txt' does not exist"),
    (["connect", "fa", "fb", "--via", "text", "--memory", "image"], "--memory takes KEY=VALUE"),
    (["plan", "audio", "3d"], "mcrgraph connect fa fb --via text"),
    (["plan", "taste", "audio"], "no space has modality 'taste'"),
    (["connectors", "show", "nope"], "no stored connector named 'nope'"),
    (["similarity", "--audio", "k1"], "exactly two modalities"),
])
def test_errors_are_one_clear_line_without_traceback(run, only_fakes, args, msg):
    result = run(*args, ok=False)
    assert result.exit_code in (1, 2) and msg in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(fakes):
    result = CliRunner().invoke(cli, ["--debug", "plan", "taste", "audio"])
    assert isinstance(result.exception, mcrgraph.UnknownModalityError)


def test_bad_items_file(run, fakes, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    result = run("connect", "fa", "fb", "--via", "text", "--items", str(bad), ok=False)
    assert "line 2 is not UTF-8 text" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert "has no items" in run("connect", "fa", "fb", "--via", "text", "--items", str(empty), ok=False).output


def test_truncated_connector_is_one_line_error(run, fakes, captions, store):
    run("connect", "fa", "fb", "--via", "text", "--items", str(captions), "--epochs", "1", "--no-progress")
    path = store / "connectors" / "fa+fb" / "model.safetensors"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    result = run("similarity", "--audio", "k1", "--image", "k2", ok=False)
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "model.safetensors is corrupt" in lines[0]


def test_synthetic_main_job(run):
    out = run("connect", "synth-clip", "synth-clap", "--via", "text", "--epochs", "3", "--no-progress").output
    assert "stored connector synth-clip+synth-clap" in out
    out = run("synthetic-eval", "--concepts", "50").output
    assert "chance" in out and "no connection" in out and "SYNTHETIC" in out


def test_synthetic_ablations_table_and_files(run, monkeypatch, tmp_path):
    from mcrgraph.default_plugins import synthetic_eval

    quick = {name: {**opts, "epochs": min(opts.get("epochs", 1), 1)} for name, opts in synthetic_eval.VARIANTS.items()}
    monkeypatch.setattr(synthetic_eval, "VARIANTS", quick)
    out = run("synthetic-eval", "--ablations", "--concepts", "20", "--out", str(tmp_path / "res")).output
    assert "synth-clip" in out and "results.json" in out
    data = json.loads((tmp_path / "res" / "results.json").read_text())
    rows = data["rows"]
    assert rows["Ex-MCR, full"]["image->text R@1"] == rows["synth-clip alone"]["image->text R@1"]  # the base is untouched
    assert "| C-MCR, full |" in (tmp_path / "res" / "results.md").read_text()
    assert "torch" in data["machine"]
    assert "whole numbers" in run("synthetic-eval", "--ablations", "--seeds", "x", ok=False).output


def test_resume_flag(run, fakes, captions):
    out = run("connect", "fa", "fb", "--via", "text", "--items", str(captions), "--resume", "--no-progress", ok=False).output
    assert "nothing to resume" in out
    assert "stored connector" in run("connect", "fa", "fb", "--via", "text", "--items", str(captions), "--epochs", "2", "--no-progress").output


def test_synthetic_eval_along_a_planned_path(run):
    run("connect", "synth-clip", "synth-clap", "--via", "text", "--method", "ex-mcr", "--epochs", "2", "--no-progress")
    run("connect", "synth-clip", "synth-ulip", "--via", "image", "--method", "ex-mcr", "--epochs", "2", "--no-progress")
    out = run("synthetic-eval", "--path", "audio", "3d", "--concepts", "30").output
    assert "=> synth-clip <=" in out.replace("\n", " ") and "R@1" in out
    assert "the synthetic world has" in run("synthetic-eval", "--path", "audio", "smell", ok=False).output


def test_media_folders_keep_only_their_modalitys_files(tmp_path):
    from mcrgraph.errors import DataError
    from mcrgraph.io.items import read_items

    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.JPG").write_bytes(b"x")
    assert read_items(tmp_path, "image") == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.JPG")]
    assert len(read_items(tmp_path, "my-modality")) == 3  # a plugin's own modality: every file
    with pytest.raises(DataError, match="no audio files"):
        read_items(tmp_path, "audio")
