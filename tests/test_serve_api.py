"""The HTTP API of mcrgraph serve, through FastAPI's test client, on fake spaces: JSON answers,
JSON errors with the CLI's one-line messages and the right status codes, uploads capped and
judged by content, gallery files only from inside the gallery, and a server that keeps serving
after a request fails."""
from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from mcrgraph.serve import create_app  # noqa: E402
from mcrgraph.serve.uploads import sniff  # noqa: E402
from mcrgraph.tasks.galleries import add_gallery  # noqa: E402


def png_bytes(colour=(200, 30, 30), size=(8, 8)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def wav_bytes(seconds=0.2, sr=16000) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, (0.1 * np.sin(np.arange(int(seconds * sr)) / 5)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


@pytest.fixture
def gallery(only_fakes, tmp_path):
    d = tmp_path / "pics"
    d.mkdir()
    for i, name in enumerate(("k0#a.png", "k1#a.png", "k1#b.png", "k2#a.png")):
        (d / name).write_bytes(png_bytes((40 * i, 100, 200)))
    add_gallery("pics", d, "image@fa")
    return d


@pytest.fixture
def client(gallery):
    return TestClient(create_app(max_upload=100_000))


def test_text_search_answers_with_results_scores_urls_and_the_path(client, gallery):
    r = client.post("/search", data={"gallery": "pics", "text": f"{gallery}/k1", "k": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"]["text"] == "text@fa <-> image@fa (both in fa)" and body["path"]["kind"] == "plugin"
    assert [x["rank"] for x in body["results"]] == [1, 2, 3]
    assert sorted(x["label"] for x in body["results"][:2]) == ["k1#a", "k1#b"]
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    first = body["results"][0]
    item = client.get(first["url"])
    assert item.status_code == 200 and item.headers["content-type"] == "image/png"
    assert item.content == (gallery / f"{first['label']}.png").read_bytes()  # the file itself
    view = client.get(first["view"])
    assert view.status_code == 200 and view.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_upload_is_judged_by_its_content_not_its_name(client):
    r = client.post("/search", data={"gallery": "pics"}, files={"file": ("sound.wav", png_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json()["query"] == {"modality": "image", "kind": "file", "name": "sound.wav", "format": "png", "bytes": len(png_bytes())}
    r = client.post("/search", data={"gallery": "pics"}, files={"file": ("photo.png", b"#!/bin/sh\nrm -rf /\n", "image/png")})
    assert r.status_code == 415 and r.json()["type"] == "UnsupportedMediaError"
    assert "judged by its content" in r.json()["error"]
    r = client.post("/search", data={"gallery": "pics", "modality": "audio"}, files={"file": ("x.png", png_bytes(), "image/png")})
    assert r.status_code == 415 and r.json()["error"] == "the upload is an image file by its content, not audio"


def test_uploads_over_the_cap_are_refused_with_413(client):
    big = b"RIFF\0\0\0\0WAVE" + b"\0" * 200_000
    r = client.post("/search", data={"gallery": "pics"}, files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and r.json()["type"] == "UploadTooLargeError"

    def chunks():  # no Content-Length: the body is counted as it streams and cut off at the cap
        for _ in range(30):
            yield b"x" * 10_000

    r = client.post("/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "at most 100,000 bytes" in r.json()["error"]
    assert client.post("/search", data={"gallery": "pics", "text": "q"}).status_code == 200  # control: still serving


def test_errors_are_json_with_the_clis_message_and_the_right_status(client, gallery):
    cases = [
        (client.post("/search", data={"gallery": "nope", "text": "q"}), 404, "UnknownGalleryError", "no gallery named 'nope'"),
        (client.post("/search", data={"gallery": "pics"}), 400, "DataError", "give exactly one query"),
        (client.post("/search", data={"gallery": "pics", "text": "q", "k": "0"}), 422, "RequestError", "k:"),
        (client.post("/search", data={"gallery": "pics", "text": "q", "modality": "smell"}), 400, "DataError", "not smell"),
        (client.get("/plan", params={"a": "audio", "b": "image"}), 409, "NoPathError", "no trained space covers audio and image"),
        (client.get("/plan", params={"a": "smell", "b": "image"}), 400, "UnknownModalityError", "smell"),
        (client.get("/galleries/pics/items/4"), 404, "HTTPError", "has items 0 to 3"),
        (client.get("/galleries/pics/items/-1"), 404, "HTTPError", "has items 0 to 3"),
        (client.get("/spaces/nope/retention"), 404, "UnknownMCRError", "nope"),
    ]
    for r, status, kind, message in cases:
        body = r.json()
        assert (r.status_code, body["type"], body["status"]) == (status, kind, status), body
        assert message in body["error"], body
    plan = client.get("/plan", params={"a": "audio", "b": "image"}).json()
    assert plan["steps"] == ["mcrgraph connect fb fa --via text --items TEXT_ITEMS"]
    from click.testing import CliRunner

    from mcrgraph.cli import cli

    said = CliRunner().invoke(cli, ["plan", "audio", "image"])
    assert said.exit_code == 1 and said.output.strip() == f"Error: {plan['error']}"  # the CLI's very message


def test_a_search_with_no_path_names_the_connects_and_the_two_modalities(client):
    r = client.post("/search", data={"gallery": "pics"}, files={"file": ("q.wav", wav_bytes(), "audio/wav")})
    assert r.status_code == 409
    assert r.json()["between"] == ["audio", "image@fa"] and r.json()["steps"]
    r = client.post("/connect", data={"a": "audio", "b": "image@fa"})
    assert r.status_code == 400 and "needs your own items of text" in r.json()["error"]  # fakes offer no default captions


@pytest.mark.parametrize("path", ["/galleries/..%2F..%2Fetc/items/0", "/galleries/pics/items/..%2F..%2Fetc%2Fpasswd",
                                  "/galleries/pics/items/0%2F..%2F..", "/galleries/%2E%2E/items/0", "/static/..%2F..%2Ferrors.py",
                                  "/galleries/pics/items/1e3"])
def test_no_path_leads_out_of_a_gallery(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404, 422), r.text
    assert b"root:" not in r.content and b"class MCRGraphError" not in r.content


def test_a_failing_request_leaves_the_server_serving(client, only_fakes, monkeypatch):
    def broken(modality, items):
        raise ZeroDivisionError("plugin bug")

    with monkeypatch.context() as m:
        m.setattr(only_fakes["fa"], "encode", broken)
        r = client.post("/search", data={"gallery": "pics", "text": "something new"})
    assert r.status_code == 500 and "plugin 'fa' encoding 'text' raised ZeroDivisionError: plugin bug" in r.json()["error"]
    assert client.post("/search", data={"gallery": "pics", "text": "something new"}).status_code == 200


def test_graph_galleries_docs(client):
    g = client.get("/graph").json()
    assert {s["name"] for s in g["spaces"]} >= {"fa", "fb", "fc"}
    assert {(n["kind"], n["name"]) for n in g["picture"]["nodes"]} >= {("space", "fa"), ("modality", "audio")}
    gal = client.get("/galleries").json()
    assert [x["name"] for x in gal if x["name"] == "pics"] == ["pics"]
    assert client.get("/docs").status_code == 200
    assert {"/search", "/graph", "/galleries", "/plan"} <= set(client.get("/openapi.json").json()["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "<script src=\"/static/app.js\">" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_serving_only_the_named_galleries(gallery):
    client = TestClient(create_app(["pics"]))
    assert [x["name"] for x in client.get("/galleries").json()] == ["pics"]
    with pytest.raises(Exception, match="no gallery named 'nope'"):
        create_app(["nope"])


@pytest.mark.parametrize("data, modality", [
    (b"RIFF\x24\0\0\0WAVEfmt ", "audio"), (b"fLaC\0\0\0\x22", "audio"), (b"OggS\0\x02", "audio"), (b"ID3\x04\0", "audio"),
    (b"\x89PNG\r\n\x1a\n", "image"), (b"\xff\xd8\xff\xe0", "image"), (b"GIF89a", "image"), (b"RIFF\0\0\0\0WEBPVP8 ", "image"),
    (b"\x93NUMPY\x01\0", "3d"), (b"ply\nformat ascii 1.0\n", "3d"),
    (b"<html>", None), (b"PK\x03\x04", None), (b"\x80\x04\x95", None),  # pickle protocol 4: never loaded
])
def test_sniff(data, modality):
    kind = sniff(data)
    assert (kind.modality if kind else None) == modality


def test_sniff_agrees_with_the_real_encoders():
    """The magic numbers are the ones real files start with: files written by soundfile, Pillow
    and numpy are recognised (mirrors of libsndfile's, Pillow's and numpy's own formats)."""
    import soundfile
    from PIL import Image

    for fmt, sub in (("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")):
        buf = io.BytesIO()
        soundfile.write(buf, np.zeros(1600, np.float32), 16000, format=fmt, subtype=sub)
        assert sniff(buf.getvalue()).modality == "audio", fmt
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buf = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buf, fmt)
        assert sniff(buf.getvalue()).modality == "image", fmt
    buf = io.BytesIO()
    np.save(buf, np.zeros((5, 3), np.float32))
    assert sniff(buf.getvalue()).suffix == ".npy"


def test_gallery_commands(only_fakes, gallery, tmp_path):
    from click.testing import CliRunner

    from mcrgraph.cli import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["gallery", "add", "more", str(gallery), "--modality", "image@fa"])
    assert r.exit_code == 0 and "gallery more: 4 image@fa items, rows in fa" in r.output
    r = runner.invoke(cli, ["gallery", "list", "--json"])
    listed = {g["name"]: g for g in __import__("json").loads(r.output)}
    assert listed["more"]["items"] == 4 and listed["more"]["source"] == str(gallery.resolve())
    r = runner.invoke(cli, ["gallery", "add", "more", str(gallery), "--modality", "image@fa"])
    assert r.exit_code == 1 and r.output.strip() == "Error: a gallery named 'more' exists already; pass --overwrite or choose another name"
    assert runner.invoke(cli, ["gallery", "remove", "more"]).exit_code == 0
    r = runner.invoke(cli, ["gallery", "remove", "more"])
    assert r.exit_code == 1 and "no gallery named 'more'" in r.output
    assert gallery.is_dir() and len(list(gallery.iterdir())) == 4  # the folder's own files are untouched


def test_serve_prints_its_address_and_serves(tmp_path):
    """The command as a user runs it: a subprocess on port 0, the address read from its output."""
    import os
    import subprocess
    import sys

    import httpx

    env = dict(os.environ, MCRGRAPH_HOME=str(tmp_path / "home"), MCRGRAPH_LOAD_PLUGINS="synthetic")
    proc = subprocess.Popen([sys.executable, "-m", "mcrgraph", "serve", "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        url = line.split()[2]
        assert httpx.get(url + "galleries").json() == []  # the synthetic plugin offers no gallery
        assert httpx.get(url).status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_tie_between_two_spaces_names_the_pins_and_a_pinned_search_runs(client):
    """Two connectors answer audio->image equally well (as a connector and its adapted copy do):
    409 with the pins that choose (the page turns them into buttons), and the pinned search runs."""
    import mcrgraph
    from conftest import CAPTIONS, QUICK

    for name in ("one", "two"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name=name, config=QUICK)
    upload = {"file": ("q.wav", wav_bytes(), "audio/wav")}
    r = client.post("/search", data={"gallery": "pics"}, files=upload)
    body = r.json()
    assert r.status_code == 409 and body["type"] == "AmbiguousPathError", body
    assert body["pins"] == [["audio@one", "image@fa"], ["audio@two", "image@fa"]]  # the gallery is image@fa
    r = client.post("/search", data={"gallery": "pics", "modality": "audio@two"}, files=upload)
    assert r.status_code == 200, r.text
    assert r.json()["query"]["modality"] == "audio@two" and "two" in r.json()["path"]["text"]
