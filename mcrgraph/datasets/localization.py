"""Sound-source localization: VGG-SS and Flickr-SoundNet test sets, with the evaluation of Chen et
al. 2021 ("Localizing Visual Sounds the Hard Way", LVS) as EZ-VSL's code runs it: each heat map
is resized to 224x224, its upper half of pixels is the prediction, and cIoU is taken against a
224x224 ground-truth map built from the boxes; the reports are cIoU (the fraction of samples
with cIoU >= 0.5) and AUC (the area under that fraction over thresholds 0..1)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..ranking.metrics import ciou, localization
from .common import (AUDIO_EXTS, IMAGE_EXTS, Report, Scorer, check_limit, find_media, hint, not_empty, read_json, read_lines, read_text,
                     root_dir, split_file)

SIZE = 224
FLICKR_FRAME = 256  # Flickr-SoundNet boxes are in pixels of a 256x256 frame


@dataclass
class LocalizationSplit:
    dataset: str
    ids: list[str]
    audio: list[str]
    frames: list[str]
    gt_maps: list[np.ndarray]  # (224, 224) in [0, 1]
    info: dict = field(default_factory=dict)


def gt_map(boxes, consensus: bool) -> np.ndarray:
    """A 224x224 map from boxes (xmin, ymin, xmax, ymax in 224-pixel units). ``consensus``
    (Flickr-SoundNet, several annotators): the box count / 2, capped at 1; else (VGG-SS, one
    annotation): 1 inside any box."""
    m = np.zeros((SIZE, SIZE))
    for x0, y0, x1, y1 in boxes:
        m[int(y0):int(y1), int(x0):int(x1)] += 1
    return np.minimum(m / 2, 1) if consensus else (m > 0).astype(np.float64)


def _media(r: Path, ids_and_lines, where: Path, dataset: str):
    """(line, id, (audio, frame) or None, what is missing) for each id."""
    for n, i in ids_and_lines:
        a = find_media([r / "audio"], (i,), AUDIO_EXTS)
        f = find_media([r / "frames"], (i,), IMAGE_EXTS)
        if a is None or f is None:
            what = "audio/<id>.wav" if a is None else "frames/<id>.jpg"
            yield n, i, None, what
            continue
        yield n, i, (str(a), str(f)), None


def load_vggss(root, limit: int | None = None) -> LocalizationSplit:
    """``vggss.json`` (a list of {"file", "class", "bbox": [[xmin, ymin, xmax, ymax], ...]} with
    coordinates as fractions of the frame), ``frames/<file>.jpg`` and ``audio/<file>.wav``.
    Entries whose media are missing (VGGSound videos disappear) are skipped and counted."""
    r = root_dir(root, "VGGSS", "vggss.json, frames/ and audio/")
    json_path = split_file(r, ("vggss.json", "metadata/vggss.json"), "VGGSS", "the test annotation file")
    data = read_json(json_path)
    if not isinstance(data, list):
        raise DataError(f"{json_path}: expected a list of {{'file', 'bbox'}} entries (VGG-SS's vggss.json)")
    entries = []
    for k, e in enumerate(data):
        boxes = e.get("bbox") if isinstance(e, dict) else None
        if not isinstance(e, dict) or not isinstance(e.get("file"), str) or not isinstance(boxes, list) or not boxes:
            raise DataError(f"{json_path}: entry {k} needs a 'file' and a non-empty 'bbox' list")
        try:
            arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        except (ValueError, TypeError):
            raise DataError(f"{json_path}: entry {k} ({e['file']}): each box is [xmin, ymin, xmax, ymax] in 0..1") from None
        entries.append((k, e["file"], (np.clip(arr, 0, 1) * SIZE).astype(int)))
    return _split("VGGSS", r, json_path, [(k, f) for k, f, _ in entries], {f: b for _, f, b in entries}, False, limit, skip=True)


def _flickr_boxes(path: Path) -> list[list[int]]:
    """The boxes of one Flickr-SoundNet annotation: every <bbox> element, its xmin, ymin, xmax,
    ymax children (by name, else its last four children), in 256x256 pixels -> 224x224."""
    try:
        tree = ET.fromstring(read_text(path))
    except ET.ParseError as e:
        raise DataError(f"{path}: line {e.position[0]} is not valid XML ({e})") from None
    boxes = []
    for bbox in tree.iter("bbox"):
        named = [bbox.find(t) for t in ("xmin", "ymin", "xmax", "ymax")]
        children = named if all(c is not None for c in named) else list(bbox)[-4:]
        try:
            values = [int(float((c.text or "").strip())) for c in children]
        except ValueError:
            values = []
        if len(values) != 4:
            raise DataError(f"{path}: a <bbox> must hold xmin, ymin, xmax, ymax as numbers")
        boxes.append([int(SIZE * v / FLICKR_FRAME) for v in values])
    if not boxes:
        raise DataError(f"{path}: no <bbox> found")
    return boxes


def load_flickr(root, limit: int | None = None) -> LocalizationSplit:
    """Flickr-SoundNet test set (250 pairs): ``flickr_test.csv`` (one id per line, as EZ-VSL's
    metadata), ``Annotations/<id>.xml``, ``frames/<id>.jpg`` and ``audio/<id>.wav``. Every
    listed id must have all three."""
    r = root_dir(root, "Flickr-SoundNet", "flickr_test.csv, Annotations/, frames/ and audio/")
    list_path = split_file(r, ("flickr_test.csv", "metadata/flickr_test.csv", "test.txt"), "Flickr-SoundNet", "the test list")
    ids = [(n, line.split(",")[0].strip().removesuffix(".jpg").removesuffix(".wav")) for n, line in read_lines(list_path)]
    ids = [(n, i) for n, i in ids if not (n == 1 and i.lower() in ("file", "id", "filename"))]  # a header
    boxes = {}
    for n, i in ids:
        xml = r / "Annotations" / f"{i}.xml"
        if not xml.is_file():
            raise DataError(f"{list_path}: line {n} names {i!r}, but {xml} does not exist ({hint('flickr-soundnet')})")
        boxes[i] = _flickr_boxes(xml)
    return _split("Flickr-SoundNet", r, list_path, ids, boxes, True, limit, skip=False)


def _split(dataset, r, where, ids, boxes, consensus, limit, skip) -> LocalizationSplit:
    keep_ids, audio, frames, maps, skipped = [], [], [], [], 0
    for n, i, media, what in _media(r, ids, where, dataset):
        if media is None:
            if skip:
                skipped += 1
                continue
            raise DataError(f"{where}: line {n}: {i!r} has no {what} under {r} ({hint(dataset.lower())})")
        keep_ids.append(i)
        audio.append(media[0])
        frames.append(media[1])
        maps.append(gt_map(boxes[i], consensus))
        if check_limit(limit) and len(keep_ids) >= limit:
            break
    if not keep_ids and skipped:
        raise DataError(f"{dataset}: none of the {skipped} entries of {where} has both audio/<id>.wav and frames/<id>.jpg "
                        f"under {r} ({hint(dataset.lower())})")
    not_empty(keep_ids, dataset, where, "entries")
    info = {"split file": str(where), "samples": len(keep_ids)} | ({"skipped (media missing)": skipped} if skip else {})
    return LocalizationSplit(dataset, keep_ids, audio, frames, maps, info | ({"limit": limit} if limit else {}))


def score_heatmaps(heatmaps, gt_maps) -> dict[str, float]:
    """cIoU and AUC of heat maps (any size, each (H, W)) against 224x224 ground truths: each
    map is resized to 224x224 (bilinear) first."""
    if len(heatmaps) != len(gt_maps) or not len(gt_maps):
        raise DataError(f"need one heat map per sample: got {len(heatmaps)} heat maps for {len(gt_maps)} samples")
    cious = []
    for h, g in zip(heatmaps, gt_maps):
        t = torch.as_tensor(np.asarray(h, dtype=np.float32))
        if t.ndim != 2:
            raise DataError(f"a heat map is (H, W), got shape {tuple(t.shape)}")
        t = F.interpolate(t[None, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0, 0]
        cious.append(ciou(t.numpy(), g))
    return localization(cious) | {"samples": len(cious)}


def heatmaps(split: LocalizationSplit, scorer: Scorer, batch: int = 32) -> list[np.ndarray]:
    """Audio-to-patch heat maps, one per sample: the cosine of the sample's audio embedding with
    each patch embedding of its frame (``mcrgraph.tasks.localize``'s maps, computed in batches). The
    path is the scorer's (``--space``/``--path``), else ``localize.plan_dense``: the planner's
    choice, moved to a space with dense image features when the planned one has none."""
    from ..tasks.localize import check_dense_path, embed_dense, plan_dense
    from ..spaces.encoding import embed
    from ..planning.planner import pin_for
    from ..spaces.registry import get_mcr

    g = scorer.graph

    def space(name):
        return g.mcr(name) if name in g.nx else get_mcr(name)

    path = scorer.plan("audio", "image") if (scorer.space or scorer.pins) else plan_dense(g, "audio", "image")
    check_dense_path(g, path, path.target)
    scorer.paths.pop("audio<->image", None)
    scorer.paths["audio<->image (dense)"] = path.describe()
    audio = embed(space(path.node), pin_for(path.source, path.node), split.audio, progress=scorer.progress)
    image_space, image_pin = space(path.target_node), pin_for(path.target, path.target_node)
    maps = []
    for start in range(0, len(split.frames), batch):
        dense = embed_dense(image_space, image_pin, split.frames[start:start + batch])  # (n, H, W, d)
        q = audio[start:start + batch]
        maps += list(torch.einsum("nhwd,nd->nhw", dense, q).float().numpy())
    return maps


def evaluate_localization(split: LocalizationSplit, scorer: Scorer) -> Report:
    maps = heatmaps(split, scorer)
    rows = {"result": score_heatmaps(maps, split.gt_maps)}
    return Report(split.dataset, {f"{split.dataset}: sound-source localization": rows}, dict(split.info))
