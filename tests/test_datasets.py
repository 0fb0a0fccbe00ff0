"""Benchmark loaders and `mcrgraph eval DATASET`: each dataset's layout built as a tiny fixture,
evaluated end to end through a fake space that reads a concept out of each file, so every
metric has a known value (and a deliberate mistake keeps it below 1)."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import mcrgraph
from mcrgraph.ranking import metrics
from mcrgraph.datasets import BENCHMARKS, Scorer, counterfactual, score_heatmaps
from mcrgraph.cli.datasets import run
from mcrgraph.datasets.localization import gt_map

CONCEPTS = ["dog", "cat", "car", "bell", "drum"]


def concept_vector(name: str) -> torch.Tensor:
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return torch.randn(16, generator=torch.Generator().manual_seed(seed))


class FileMCR(mcrgraph.MCR):
    """Reads a concept out of each item: text names it; a wav's peak is (k+1)/20; an image's red
    value is 10*k (patch by patch for dense features, 255 = background); a point cloud's x
    extent is (k+1) times its y extent."""

    name, modalities, dim, cache = "files", ("audio", "image", "text", "3d"), 16, False

    def concept(self, modality, item) -> str:
        if modality == "text":
            words = re.findall(r"[a-z]+", str(item))
            return next((c for c in CONCEPTS if c in words), f"unknown:{item}")
        if modality == "audio":
            data, _ = sf.read(str(item))
            return CONCEPTS[int(round(np.abs(data).max() * 20)) - 1]
        if modality == "image":
            with Image.open(item) as im:
                return self._colour(im.convert("RGB").getpixel((0, 0))[0])
        pts = np.asarray(item)
        return CONCEPTS[int(round(pts[:, 0].std() / pts[:, 1].std())) - 1]

    @staticmethod
    def _colour(red: int) -> str:
        return "background" if red == 255 else CONCEPTS[red // 10]

    def encode(self, modality, items):
        return F.normalize(torch.stack([concept_vector(self.concept(modality, i)) for i in items]), dim=1)

    def dense_modalities(self):
        return ("image",)

    def encode_dense(self, modality, items):
        out = []
        for item in items:
            with Image.open(item) as im:
                small = np.asarray(im.convert("RGB").resize((8, 8), Image.NEAREST))[:, :, 0]
            out.append(torch.stack([torch.stack([concept_vector(self._colour(int(v))) for v in row]) for row in small]))
        return F.normalize(torch.stack(out), dim=-1)


@pytest.fixture
def files():
    space = FileMCR()
    mcrgraph.register(space)
    yield space
    mcrgraph.unregister(space.name)


def wav(path, concept: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    k = CONCEPTS.index(concept)
    t = np.arange(1600) / 16000
    sf.write(str(path), ((k + 1) / 20 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="FLOAT")


def image(path, concept: str, box=None):
    """A solid image of the concept's colour; with ``box`` (x0, y0, x1, y1 in pixels), white
    with the concept's colour inside the box."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (10 * CONCEPTS.index(concept), 0, 0)
    im = Image.new("RGB", (64, 64), (255, 255, 255) if box else colour)
    if box:
        im.paste(colour, box)
    im.save(path)


# -- metrics --------------------------------------------------------------------------------


def test_topk_accuracy():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    assert metrics.topk_accuracy(scores, [0, 0, 2], ks=(1, 2, 3)) == {"acc1": pytest.approx(1 / 3), "acc2": pytest.approx(1 / 3), "acc3": 1.0}


def test_ciou_picks_the_upper_half_and_weighs_consensus():
    heat = np.tile(np.array([3.0, 2.0, 1.0, 0.0]), (4, 1))  # strongest on the left
    left = np.zeros((4, 4))
    left[:, :2] = 1
    assert metrics.ciou(heat, left) == 1.0
    assert metrics.ciou(heat[:, ::-1], left) == 0.0
    consensus = np.zeros((4, 4))
    consensus[:, 0], consensus[:, 1] = 1.0, 0.5  # two annotators on column 0, one on column 1
    middle = np.tile(np.array([0.0, 3.0, 2.0, 1.0]), (4, 1))  # predicts columns 1 and 2
    assert metrics.ciou(middle, consensus) == pytest.approx((4 * 0.5) / (4 * 1.5 + 4))
    with pytest.raises(ValueError, match="same 2-D size"):
        metrics.ciou(heat, np.zeros((3, 3)))


def test_auc_and_success_rate():
    assert metrics.localization([1.0, 0.0]) == {"cIoU": 0.5, "AUC": pytest.approx((1 + 0.5) / 2 * 0.05 + 0.5 * 0.95)}
    assert metrics.auc([1.0, 1.0]) == pytest.approx(1.0)
    assert metrics.auc([]) == 0.0


def test_gt_maps_and_synthetic_heatmaps():
    flickr = gt_map([[0, 0, 112, 224], [0, 0, 56, 224]], consensus=True)
    assert flickr[:, :56].min() == 1.0 and flickr[0, 60] == 0.5 and flickr[0, 120] == 0.0
    vggss = gt_map([[0, 0, 112, 224]], consensus=False)
    assert vggss.sum() == 112 * 224
    good = np.zeros((7, 7))
    good[:, :3] = 1.0  # an image-patch map, upsampled to 224x224 first
    good[:, 3] = 0.6
    bad = good[:, ::-1]
    out = score_heatmaps([good, good, bad], [vggss] * 3)
    assert out["cIoU"] == pytest.approx(2 / 3) and out["samples"] == 3 and 0.3 < out["AUC"] < 0.7


def test_counterfactual_protocol():
    # audio x frame cosines of three videos: video 2's true pair loses to video 0's audio
    sim = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.9, 0.1], [0.1, 0.3, 0.5]])
    out = counterfactual(sim, ["a", "b", "c"])
    # every negative: v0 beats both; v1 beats both; v2 (0.5) loses to a0 (0.8), beats a1 (0.1)
    assert out["every negative"] == pytest.approx((1 + 1 + 0.5) / 3) and out["videos"] == 3
    assert out["one negative"] in (pytest.approx(1.0), pytest.approx(2 / 3))
    tie = counterfactual(torch.ones(2, 2), ["a", "b"])
    assert tie["every negative"] == 0.5  # a tie counts as half a success
    with pytest.raises(mcrgraph.DataError, match="two categories"):
        counterfactual(sim, ["a", "a", "a"])


# -- AudioCaps ------------------------------------------------------------------------------


def audiocaps(root, wrong=("bell", "drum")):
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for k, c in enumerate(["dog", "cat", "car", "bell"]):
        for j in range(5):
            rows.append(f'{100 * k + j},yt{k},30,"a {c}, heard from afar {j}"')
        wav(root / "audio" / "test" / f"yt{k}.wav", wrong[1] if c == wrong[0] else c)
    rows.append('999,gone,0,"a dog whose video was removed"')
    (root / "test.csv").write_text("\n".join(rows) + "\n")
    return root


def test_audiocaps_end_to_end(tmp_path, files):
    root = audiocaps(tmp_path / "audiocaps")
    split = BENCHMARKS["audiocaps"].load(root)
    assert len(split.media) == 4 and len(split.texts) == 20 and split.info["clips skipped (audio missing)"] == 1
    report = run(BENCHMARKS["audiocaps"], root, space="files", progress=False)
    a2t, t2a = report.tables["AudioCaps: audio->text retrieval"], report.tables["AudioCaps: text->audio retrieval"]
    assert a2t["result"]["R@1"] == pytest.approx(0.75) and a2t["result"]["queries"] == 4 and a2t["result"]["gallery"] == 20
    assert t2a["result"]["R@1"] == pytest.approx(0.75) and t2a["result"]["R@10"] == 1.0
    assert t2a["chance"]["R@1"] == pytest.approx(0.25)
    assert report.info["paths"] == {"audio<->text": "audio@files <-> text@files (both in files)"}


def test_audiocaps_accepts_audiocap_ids_and_names_a_missing_folder(tmp_path, files):
    root = tmp_path / "ac"
    root.mkdir()
    (root / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n7,yt,0,a dog\n8,yt,0,a dog again\n")
    with pytest.raises(mcrgraph.DataError, match=r"none of the 2 test captions has its audio.*audio/test \(which does not exist\)"):
        BENCHMARKS["audiocaps"].load(root)
    wav(root / "audio" / "test" / "7.wav", "dog")
    split = BENCHMARKS["audiocaps"].load(root)
    assert split.media == [str(root / "audio" / "test" / "7.wav")] and split.texts == ["a dog", "a dog again"]


# -- Clotho ---------------------------------------------------------------------------------


def clotho(root):
    rows = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
    for c in ("dog", "cat", "car"):
        rows.append(f"{c}_sound.wav," + ",".join(f"the {c} number {j}" for j in range(5)))
        wav(root / "evaluation" / f"{c}_sound.wav", c)
    (root / "clotho_captions_evaluation.csv").write_text("\n".join(rows) + "\n")
    return root


def test_clotho_end_to_end_and_limit(tmp_path, files):
    root = clotho(tmp_path / "clotho")
    report = run(BENCHMARKS["clotho"], root, space="files")
    assert report.tables["Clotho: audio->text retrieval"]["result"]["R@1"] == 1.0
    assert report.tables["Clotho: text->audio retrieval"]["result"]["mAP"] == 1.0
    small = run(BENCHMARKS["clotho"], root, space="files", limit=2)
    assert small.tables["Clotho: text->audio retrieval"]["result"]["queries"] == 10 and small.info["limit"] == 2


def test_clotho_malformed_row_names_file_and_line(tmp_path):
    root = clotho(tmp_path / "clotho")
    csv = root / "clotho_captions_evaluation.csv"
    csv.write_text(csv.read_text() + "extra.wav,only,three,captions\n")
    with pytest.raises(mcrgraph.DataError, match=r"clotho_captions_evaluation.csv: line 5 has 4 fields, the header has 6"):
        BENCHMARKS["clotho"].load(root)
    csv.write_text("file_name,caption_1\n")
    with pytest.raises(mcrgraph.DataError, match=r"line 1 \(the header\) lacks the column\(s\) caption_2"):
        BENCHMARKS["clotho"].load(root)


def test_clotho_empty_split_and_missing_audio_folder(tmp_path):
    root = tmp_path / "c"
    (root / "evaluation").mkdir(parents=True)
    (root / "clotho_captions_evaluation.csv").write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n")
    with pytest.raises(mcrgraph.DataError, match="the test split in .* has no clips"):
        BENCHMARKS["clotho"].load(root)
    (root / "evaluation").rmdir()
    with pytest.raises(mcrgraph.DataError, match="extract clotho_audio_evaluation.7z"):
        BENCHMARKS["clotho"].load(root)


# -- COCO -----------------------------------------------------------------------------------


def coco(root):
    images = []
    for k, c in enumerate(["dog", "cat", "car", "bell"]):
        name = f"COCO_val2014_{k:012d}.jpg"
        image(root / "val2014" / name, c)
        split = "train" if c == "bell" else "test"
        images.append({"filepath": "val2014", "filename": name, "split": split, "imgid": k,
                       "sentences": [{"raw": f"a photo of a {c} {j}"} for j in range(6)]})  # six: the first five count
    (root / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": images}))
    return root


def test_coco_end_to_end_uses_the_test_split_and_five_captions(tmp_path, files):
    root = coco(tmp_path / "coco")
    split = BENCHMARKS["coco"].load(root)
    assert len(split.media) == 3 and len(split.texts) == 15
    report = run(BENCHMARKS["coco"], root, path=("image@files", "text@files"))
    assert report.tables["COCO: image->text retrieval"]["result"]["R@5"] == 1.0
    assert report.tables["COCO: text->image retrieval"]["result"]["R@1"] == 1.0


def test_coco_errors(tmp_path):
    root = coco(tmp_path / "coco")
    data = json.loads((root / "dataset_coco.json").read_text())
    del data["images"][1]["sentences"]
    (root / "dataset_coco.json").write_text(json.dumps(data))
    with pytest.raises(mcrgraph.DataError, match=r"dataset_coco.json: images\[1\] needs a 'filename' and a non-empty 'sentences'"):
        BENCHMARKS["coco"].load(root)
    (root / "dataset_coco.json").write_text('{"images": [\n  {"split": "test",}\n]}')
    with pytest.raises(mcrgraph.DataError, match="dataset_coco.json: line 2 is not valid JSON"):
        BENCHMARKS["coco"].load(root)
    (root / "dataset_coco.json").unlink()
    with pytest.raises(mcrgraph.DataError, match=r"COCO: Karpathy's split file 'dataset_coco.json' or .* is missing"):
        BENCHMARKS["coco"].load(root)


# -- ModelNet40 -----------------------------------------------------------------------------


def modelnet(root, shapes=(("dog", 2), ("cat", 2), ("car", 1), ("bell", 1))):
    """Classes named after the concepts (plus night_stand, never tested); class k's points fill
    a box k+1 times wider than tall. The last car shape is drawn as a bell: one mistake."""
    classes = [*CONCEPTS[:4], "night_stand"]
    base = root / "modelnet40_normal_resampled"
    base.mkdir(parents=True)
    (base / "modelnet40_shape_names.txt").write_text("\n".join(classes) + "\n")
    rng = np.random.default_rng(0)
    test = []
    for c, n in shapes:
        for j in range(1, n + 1):
            shape = f"{c}_{j:04d}"
            test.append(shape)
            drawn = "bell" if (c == "car" and j == n) else c
            pts = rng.uniform(-1, 1, (2000, 3)) * [CONCEPTS.index(drawn) + 1, 1, 1] + 5
            normals = rng.standard_normal((2000, 3))
            (base / c).mkdir(exist_ok=True)
            np.savetxt(base / c / f"{shape}.txt", np.hstack([pts, normals]), delimiter=",", fmt="%.6f")
    (base / "modelnet40_test.txt").write_text("\n".join(test) + "\n")
    return root


def test_modelnet40_end_to_end(tmp_path, files):
    root = modelnet(tmp_path / "mn")
    report = run(BENCHMARKS["modelnet40"], root, space="files", templates=("a point cloud of a {}.",), n_points=512)
    rows = report.tables["ModelNet40: zero-shot 3d classification"]
    assert rows["result"]["Acc@1"] == pytest.approx(5 / 6) and rows["result"]["Acc@5"] == 1.0
    assert rows["chance"]["Acc@1"] == pytest.approx(1 / 5) and rows["result"]["classes"] == 5
    assert report.info["paths"] == {"3d<->text": "3d@files <-> text@files (both in files)"}


def test_modelnet40_errors(tmp_path):
    root = modelnet(tmp_path / "mn", shapes=(("dog", 1),))
    base = root / "modelnet40_normal_resampled"
    (base / "modelnet40_test.txt").write_text("dog_0001\nnot-a-shape\n")
    with pytest.raises(mcrgraph.DataError, match=r"modelnet40_test.txt: line 2 is 'not-a-shape'; expected <class>_<number>"):
        BENCHMARKS["modelnet40"].load(root)
    (base / "modelnet40_test.txt").write_text("dog_0001\ndog_0002\n")
    with pytest.raises(mcrgraph.DataError, match=r"line 2 names 'dog_0002', but .*dog_0002.txt does not exist"):
        BENCHMARKS["modelnet40"].load(root)
    from mcrgraph.datasets.modelnet import read_shape

    bad = base / "dog" / "dog_0001.txt"
    bad.write_text("0,0,0,1,0,0\n1,2,x,0,0,1\n")
    with pytest.raises(mcrgraph.DataError, match=r"dog_0001.txt: line 2 is not numbers separated by commas"):
        read_shape(bad, 16)
    (base / "modelnet40_test.txt").write_text("\n\n")
    with pytest.raises(mcrgraph.DataError, match="has no shapes"):
        BENCHMARKS["modelnet40"].load(base)  # the folder itself works as --root too
    (base / "modelnet40_test.txt").unlink()
    with pytest.raises(mcrgraph.DataError, match="ModelNet40: the test split file 'modelnet40_test.txt' is missing"):
        BENCHMARKS["modelnet40"].load(root)


# -- AVE ------------------------------------------------------------------------------------


def ave(root):
    lines = ["Category&VideoID&Quality&StartTime&EndTime"]
    videos = [("Dog", "dog", "dog"), ("Dog", "dog", "dog"), ("Car", "car", "car"), ("Bell", "bell", "drum")]  # last: wrong audio
    for k, (cat, seen, heard) in enumerate(videos):
        vid = f"v{k}"
        lines.append(f"{cat}&{vid}&good&2&8")
        wav(root / "audio" / f"{vid}.wav", heard)
        for s in range(10):  # one frame per second; only the middle of the event (5 s) shows it
            image(root / "frames" / vid / f"{s:02d}.jpg", seen if s == 5 else "cat")
    (root / "testSet.txt").write_text("\n".join(lines) + "\n")
    return root


def test_ave_end_to_end(tmp_path, files):
    root = ave(tmp_path / "ave")
    split = BENCHMARKS["ave"].load(root)
    assert split.frames[0].endswith("v0/05.jpg") and split.info["categories"] == 3
    report = run(BENCHMARKS["ave"], root, space="files", seed=0)
    ret = report.tables["AVE: audio->image retrieval (relevant: same event category)"]
    assert ret["result"]["R@1"] == pytest.approx(0.75) and ret["result"]["queries"] == 4
    cf = report.tables["AVE: counterfactual audio-image recognition (accuracy)"]["result"]
    assert cf["every negative"] == pytest.approx(0.75) and cf["one negative"] == pytest.approx(0.75) and cf["videos"] == 4


def test_ave_errors(tmp_path):
    root = ave(tmp_path / "ave")
    with open(root / "testSet.txt", "a") as f:
        f.write("Dog&v9&good&2\n")
    with pytest.raises(mcrgraph.DataError, match=r"testSet.txt: line 6 has 4 fields separated by '&'"):
        BENCHMARKS["ave"].load(root)
    (root / "testSet.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\nDog&v9&good&2&8\n")
    with pytest.raises(mcrgraph.DataError, match=r"line 2: video 'v9' has no audio/<id>.wav"):
        BENCHMARKS["ave"].load(root)
    (root / "testSet.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n")
    with pytest.raises(mcrgraph.DataError, match="has no videos"):
        BENCHMARKS["ave"].load(root)


# -- sound-source localization --------------------------------------------------------------


def localization_fixture(root, kind: str):
    """Three frames with the sounding object's colour in the left half; the third one's object
    is drawn on the right, against an annotation on the left: one miss."""
    entries, ids = [], []
    for k, c in enumerate(["dog", "cat", "car"]):
        i = f"s{k}"
        ids.append(i)
        image(root / "frames" / f"{i}.jpg", c, box=(32, 0, 64, 64) if k == 2 else (0, 0, 32, 64))
        wav(root / "audio" / f"{i}.wav", c)
        entries.append({"file": i, "class": c, "bbox": [[0.0, 0.0, 0.5, 1.0]]})
        if kind == "flickr":
            (root / "Annotations").mkdir(parents=True, exist_ok=True)
            boxes = "".join("<object><bbox><name>x</name><xmin>0</xmin><ymin>0</ymin><xmax>128</xmax><ymax>256</ymax></bbox></object>"
                            for _ in range(2))
            (root / "Annotations" / f"{i}.xml").write_text(f"<annotation><file>{i}</file>{boxes}</annotation>")
    if kind == "vggss":
        entries.append({"file": "gone", "class": "dog", "bbox": [[0.1, 0.1, 0.2, 0.2]]})
        (root / "vggss.json").write_text(json.dumps(entries))
    else:
        (root / "flickr_test.csv").write_text("\n".join(ids) + "\n")
    return root


@pytest.mark.parametrize("name,kind", [("vggss", "vggss"), ("flickr-soundnet", "flickr")])
def test_localization_end_to_end(tmp_path, files, name, kind):
    root = localization_fixture(tmp_path / kind, kind)
    split = BENCHMARKS[name].load(root)
    assert len(split.ids) == 3 and split.gt_maps[0][:, :112].min() == 1.0 and split.gt_maps[0][:, 112:].max() == 0.0
    if kind == "vggss":
        assert split.info["skipped (media missing)"] == 1
    report = run(BENCHMARKS[name], root, space="files" if kind == "vggss" else None)  # else: the planner's choice
    assert report.info["paths"] == {"audio<->image (dense)": "audio@files <-> image@files (both in files)"}
    rows = next(iter(report.tables.values()))
    assert rows["result"]["cIoU"] == pytest.approx(2 / 3) and rows["result"]["samples"] == 3
    assert 0.5 < rows["result"]["AUC"] < 0.7


def test_localization_needs_dense_features(tmp_path):
    from conftest import FakeMCR

    root = localization_fixture(tmp_path / "v", "vggss")
    mcrgraph.register(FakeMCR("flat", ("audio", "image")))
    with pytest.raises(mcrgraph.ConfigError, match=r"cannot localize: image is encoded by 'flat'.*no dense \(patch-level\) image features"):
        run(BENCHMARKS["vggss"], root, space="flat")


def test_flickr_errors(tmp_path):
    root = localization_fixture(tmp_path / "f", "flickr")
    (root / "Annotations" / "s1.xml").write_text("<annotation><bbox><xmin>1</xmin></bbox>")
    with pytest.raises(mcrgraph.DataError, match=r"s1.xml: line 1 is not valid XML"):
        BENCHMARKS["flickr-soundnet"].load(root)
    (root / "Annotations" / "s1.xml").unlink()
    with pytest.raises(mcrgraph.DataError, match=r"flickr_test.csv: line 2 names 's1', but .*s1.xml does not exist"):
        BENCHMARKS["flickr-soundnet"].load(root)


# -- shared: roots, space selection, the command line ---------------------------------------


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_missing_root_and_missing_split_file(tmp_path, name):
    with pytest.raises(mcrgraph.DataError, match=r"root '.*nowhere' does not exist; give the folder holding .*docs/datasets.md#"):
        BENCHMARKS[name].load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(mcrgraph.DataError, match=r"is missing from .*empty \(see docs/datasets.md#"):
        BENCHMARKS[name].load(tmp_path / "empty")


def test_space_and_path_are_checked(tmp_path, files, fakes):
    root = clotho(tmp_path / "clotho")
    with pytest.raises(mcrgraph.ConfigError, match="space 'fa' has no audio"):
        run(BENCHMARKS["clotho"], root, space="fa")
    with pytest.raises(mcrgraph.ConfigError, match="--path image@fa text@fa compares image and text; this benchmark compares audio and text"):
        run(BENCHMARKS["clotho"], root, path=("image@fa", "text@fa"))
    with pytest.raises(mcrgraph.ConfigError, match="either --space or --path"):
        Scorer.make(space="files", path=("audio", "text"))
    with pytest.raises(mcrgraph.UnknownMCRError, match="no space named 'nope'"):
        run(BENCHMARKS["clotho"], root, space="nope")


def test_cli_eval_writes_json_and_markdown(tmp_path, files):
    from mcrgraph.cli import cli

    root = clotho(tmp_path / "clotho")
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["eval", "clotho", "--root", str(root), "--space", "files", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "path: audio@files <-> text@files (both in files)" in result.output and "Clotho: audio->text retrieval" in result.output
    data = json.loads((out / "clotho.json").read_text())
    assert data["tables"]["Clotho: text->audio retrieval"]["result"]["R@1"] == 1.0
    assert data["command"].startswith("mcrgraph eval clotho --root") and "--space files" in data["command"]
    md = (out / "clotho.md").read_text()
    assert "## Clotho: audio->text retrieval" in md and "| result | 1.000 |" in md
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_cli_errors_and_help(tmp_path):
    from mcrgraph.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "ave", "--root", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "AVE: root" in result.output and "does not exist" in result.output
    for name in BENCHMARKS:
        help_text = runner.invoke(cli, ["eval", name, "--help"]).output
        assert f"mcrgraph eval {name} --root" in help_text and "docs/datasets.md" in help_text
    listed = runner.invoke(cli, ["eval", "--help"]).output
    assert all(name in listed for name in BENCHMARKS)
