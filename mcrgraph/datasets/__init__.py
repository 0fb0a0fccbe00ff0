"""Benchmark loaders and evaluators for local copies of public datasets, in each dataset's
published layout (docs/datasets.md). ``BENCHMARKS`` maps a command name to its loader
(``load(root, limit=None)``) and evaluator (``evaluate(split, scorer, **options)``);
``mcrgraph eval NAME`` runs them (mcrgraph/cli/datasets.py).
May import: tasks and everything below."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .ave import counterfactual, evaluate_ave, load_ave
from .captions import evaluate_captions, load_audiocaps, load_clotho, load_coco
from .common import Report, Scorer
from .localization import evaluate_localization, load_flickr, load_vggss, score_heatmaps
from .modelnet import evaluate_modelnet40, load_modelnet40


@dataclass(frozen=True)
class Benchmark:
    name: str  # the command: mcrgraph eval NAME
    title: str
    task: str  # one line: what is measured
    modalities: tuple[str, str]
    source: str  # where the dataset is obtained
    layout: str  # what --root must hold
    load: Callable
    evaluate: Callable


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("audiocaps", "AudioCaps", "audio<->text retrieval on the test split (R@1/5/10, mAP)", ("audio", "text"),
              "https://audiocaps.github.io (captions: github.com/cdjkim/audiocaps; audio from YouTube)",
              "test.csv and audio/test/<youtube_id>.wav (or <audiocap_id>.wav)", load_audiocaps, evaluate_captions),
    Benchmark("clotho", "Clotho v2", "audio<->text retrieval on the evaluation split (R@1/5/10, mAP)", ("audio", "text"),
              "https://zenodo.org/records/4783391 (Clotho v2.1)",
              "clotho_captions_evaluation.csv and evaluation/*.wav", load_clotho, evaluate_captions),
    Benchmark("coco", "COCO (Karpathy 5k test)", "image<->text retrieval on Karpathy's 5k test split (R@1/5/10, mAP)", ("image", "text"),
              "https://cocodataset.org (val2014 images); Karpathy's splits: dataset_coco.json",
              "dataset_coco.json and val2014/*.jpg", load_coco, evaluate_captions),
    Benchmark("modelnet40", "ModelNet40", "zero-shot 3d classification on the test split (Acc@1/3/5)", ("3d", "text"),
              "https://modelnet.cs.princeton.edu; resampled points: modelnet40_normal_resampled.zip (PointNet++)",
              "modelnet40_shape_names.txt, modelnet40_test.txt and <class>/<class>_NNNN.txt", load_modelnet40, evaluate_modelnet40),
    Benchmark("ave", "AVE", "audio->image retrieval by event category (R@1/5, mAP) and counterfactual audio-image recognition",
              ("audio", "image"), "https://github.com/YapengTian/AVE-ECCV18",
              "testSet.txt, audio/<VideoID>.wav and frames/<VideoID>/*.jpg", load_ave, evaluate_ave),
    Benchmark("vggss", "VGG-SS", "sound-source localization (cIoU at 0.5, AUC)", ("audio", "image"),
              "https://www.robots.ox.ac.uk/~vgg/research/lvs/ (vggss.json; videos from VGGSound)",
              "vggss.json, frames/<file>.jpg and audio/<file>.wav", load_vggss, evaluate_localization),
    Benchmark("flickr-soundnet", "Flickr-SoundNet", "sound-source localization on the 250 annotated test pairs (cIoU at 0.5, AUC)",
              ("audio", "image"), "https://github.com/ardasnck/learning_to_localize_sound_source",
              "flickr_test.csv, Annotations/<id>.xml, frames/<id>.jpg and audio/<id>.wav", load_flickr, evaluate_localization),
)}

__all__ = ["BENCHMARKS", "Benchmark", "Report", "Scorer", "counterfactual", "score_heatmaps",
           "load_audiocaps", "load_clotho", "load_coco", "load_modelnet40", "load_ave", "load_vggss", "load_flickr",
           "evaluate_captions", "evaluate_modelnet40", "evaluate_ave", "evaluate_localization"]
