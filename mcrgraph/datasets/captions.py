"""Caption retrieval benchmarks: AudioCaps and Clotho (audio<->text), COCO Karpathy 5k (image<->text).

Each clip or image has several captions; a caption's one relevant item is its clip, a clip's
relevant items are all its captions. R@k: a relevant item among the top k; mAP as in
``mcrgraph.ranking.metrics.retrieval``."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..errors import DataError
from .common import (AUDIO_EXTS, Report, Scorer, check_limit, cross_modal_tables, find_media, hint, not_empty,
                     read_csv, read_json, root_dir, split_file)


@dataclass
class CaptionSplit:
    """``media``: one path per clip/image; ``texts`` with ``text_labels``: each caption and the
    index of its clip in ``media``."""

    dataset: str
    modality: str
    media: list[str]
    texts: list[str]
    text_labels: list[int]
    info: dict = field(default_factory=dict)


def _limit(split: CaptionSplit, limit: int | None) -> CaptionSplit:
    if not check_limit(limit) or limit >= len(split.media):
        return split
    keep = [(t, lab) for t, lab in zip(split.texts, split.text_labels) if lab < limit]
    split.info["limit"] = limit
    return CaptionSplit(split.dataset, split.modality, split.media[:limit], [t for t, _ in keep], [lab for _, lab in keep], split.info)


# -- AudioCaps ------------------------------------------------------------------------------

AUDIOCAPS_DIRS = ("audio/test", "test", "audio")


def load_audiocaps(root, limit: int | None = None) -> CaptionSplit:
    """AudioCaps test split: ``test.csv`` (audiocap_id, youtube_id, start_time, caption), five
    captions per clip; a clip's audio is ``<youtube_id>`` or ``<audiocap_id>`` with a .wav/.flac/
    .ogg/.mp3 extension, in ``audio/test/``, ``test/`` or ``audio/`` (the first found). Clips
    whose audio is missing (AudioCaps' YouTube videos disappear) are skipped and counted."""
    r = root_dir(root, "AudioCaps", "test.csv and audio/test/")
    csv_path = split_file(r, ("test.csv", "dataset/test.csv"), "AudioCaps", "the test split file")
    rows = read_csv(csv_path, ("audiocap_id", "youtube_id", "caption"))
    folders = [r / d for d in AUDIOCAPS_DIRS if (r / d).is_dir()]
    clips: OrderedDict[str, list] = OrderedDict()  # youtube_id -> [audio path, captions]
    missing: set[str] = set()
    for n, row in rows:
        yid = row["youtube_id"]
        if yid in missing:
            continue
        if yid not in clips:
            audio = find_media(folders, (yid, f"Y{yid}", row["audiocap_id"]), AUDIO_EXTS)
            if audio is None:
                missing.add(yid)
                continue
            clips[yid] = [str(audio), []]
        clips[yid][1].append(row["caption"])
    if not clips:
        where = ", ".join(str(f) for f in folders) or f"{r}/audio/test (which does not exist)"
        raise DataError(f"AudioCaps: none of the {len(rows)} test captions has its audio file in {where}; "
                        f"name each clip <youtube_id>.wav or <audiocap_id>.wav ({hint('audiocaps')})")
    split = _grouped("AudioCaps", "audio", clips)
    split.info |= {"split file": str(csv_path), "clips skipped (audio missing)": len(missing)}
    return _limit(split, limit)


def _grouped(dataset: str, modality: str, clips) -> CaptionSplit:
    media, texts, labels = [], [], []
    for i, (path, captions) in enumerate(clips.values()):
        media.append(path)
        texts += captions
        labels += [i] * len(captions)
    return CaptionSplit(dataset, modality, media, texts, labels, {"clips" if modality == "audio" else "images": len(media), "captions": len(texts)})


# -- Clotho ---------------------------------------------------------------------------------

CLOTHO_CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))


def load_clotho(root, limit: int | None = None) -> CaptionSplit:
    """Clotho v2 evaluation split: ``clotho_captions_evaluation.csv`` (file_name, caption_1 ..
    caption_5) and the audio in ``evaluation/``. Every listed clip must be there."""
    r = root_dir(root, "Clotho", "clotho_captions_evaluation.csv and evaluation/")
    csv_path = split_file(r, ("clotho_captions_evaluation.csv",), "Clotho", "the evaluation split file")
    audio_dir = r / "evaluation"
    if not audio_dir.is_dir():
        raise DataError(f"Clotho: the audio folder {audio_dir} is missing; extract clotho_audio_evaluation.7z there ({hint('clotho')})")
    clips: OrderedDict[str, list] = OrderedDict()
    for n, row in read_csv(csv_path, ("file_name", *CLOTHO_CAPTIONS)):
        audio = audio_dir / row["file_name"]
        if not audio.is_file():
            raise DataError(f"{csv_path}: line {n} names {row['file_name']!r}, which is not in {audio_dir}")
        if row["file_name"] in clips:
            raise DataError(f"{csv_path}: line {n} lists {row['file_name']!r} again")
        clips[row["file_name"]] = [str(audio), [row[c] for c in CLOTHO_CAPTIONS]]
    not_empty(clips, "Clotho", csv_path, "clips")
    split = _grouped("Clotho", "audio", clips)
    split.info["split file"] = str(csv_path)
    return _limit(split, limit)


# -- COCO -----------------------------------------------------------------------------------


def load_coco(root, limit: int | None = None) -> CaptionSplit:
    """COCO Karpathy 5k test split: ``dataset_coco.json`` (Karpathy's splits; its ``images``
    with ``split == "test"``), the first five captions (``sentences[].raw``) of each image, the
    image at ``<root>/<filepath>/<filename>`` (``val2014/COCO_val2014_....jpg``)."""
    r = root_dir(root, "COCO", "dataset_coco.json and val2014/")
    json_path = split_file(r, ("dataset_coco.json", "annotations/dataset_coco.json"), "COCO", "Karpathy's split file")
    data = read_json(json_path, "download dataset_coco.json again")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DataError(f"{json_path}: expected an object with an 'images' list (Karpathy's dataset_coco.json)")
    clips: OrderedDict[str, list] = OrderedDict()
    for i, entry in enumerate(images):
        where = f"{json_path}: images[{i}]"
        if not isinstance(entry, dict) or "split" not in entry:
            raise DataError(f"{where} is not an image entry with a 'split'")
        if entry["split"] != "test":
            continue
        name = entry.get("filename")
        sentences = entry.get("sentences")
        if not isinstance(name, str) or not isinstance(sentences, list) or not sentences:
            raise DataError(f"{where} needs a 'filename' and a non-empty 'sentences' list")
        captions = [s.get("raw", "").strip() if isinstance(s, dict) else "" for s in sentences[:5]]
        if not all(captions):
            raise DataError(f"{where} ({name}) has a sentence with no 'raw' text")
        image = r / str(entry.get("filepath", "val2014")) / name
        if not image.is_file():
            raise DataError(f"{where} names {image}, which does not exist; put COCO's val2014 images under {r / 'val2014'}")
        clips[name] = [str(image), captions]
    not_empty(clips, "COCO", json_path, "images with split 'test'")
    split = _grouped("COCO", "image", clips)
    split.info["split file"] = str(json_path)
    return _limit(split, limit)


def evaluate_captions(split: CaptionSplit, scorer: Scorer) -> Report:
    """R@1/5/10 and mAP, media->text and text->media."""
    sim = scorer.similarity(split.modality, split.media, "text", split.texts)
    tables = cross_modal_tables(split.dataset, split.modality, "text", sim, list(range(len(split.media))), split.text_labels)
    return Report(split.dataset, tables, dict(split.info))
