"""ModelNet40 zero-shot 3D classification (the test split of ``modelnet40_normal_resampled``),
through ``mcrgraph.classify``: Acc@1, Acc@3, Acc@5 over the 40 shape names."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..ranking.metrics import topk_accuracy
from ..io.pointcloud import load_point_cloud
from .common import Report, Scorer, check_limit, not_empty, read_lines, root_dir, split_file

TEMPLATES = ("a point cloud of a {}.", "a 3D model of a {}.", "a point cloud model of a {}.", "there is a {} in the scene.")
CHUNK = 256  # shapes read and classified at a time, so memory stays flat


@dataclass
class ShapeSplit:
    classes: list[str]  # modelnet40_shape_names.txt, in order
    files: list[Path]
    targets: list[int]
    info: dict = field(default_factory=dict)


def _root(root) -> Path:
    r = root_dir(root, "ModelNet40", "modelnet40_shape_names.txt, modelnet40_test.txt and one folder per class")
    if not (r / "modelnet40_shape_names.txt").is_file() and (r / "modelnet40_normal_resampled").is_dir():
        r = r / "modelnet40_normal_resampled"  # the folder the archive unpacks to
    return r


def load_modelnet40(root, limit: int | None = None) -> ShapeSplit:
    """``modelnet40_shape_names.txt`` (40 names), ``modelnet40_test.txt`` (one shape id per
    line, ``airplane_0627``), the points of a shape in ``<class>/<shape id>.txt``."""
    r = _root(root)
    names_path = split_file(r, ("modelnet40_shape_names.txt",), "ModelNet40", "the class list")
    test_path = split_file(r, ("modelnet40_test.txt",), "ModelNet40", "the test split file")
    classes = [name for _, name in read_lines(names_path)]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DataError(f"{names_path}: expected distinct class names, one per line (40 for ModelNet40), got {len(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    files, targets = [], []
    for n, shape in read_lines(test_path):
        cls, sep, num = shape.rpartition("_")
        if not sep or not num.isdigit() or cls not in index:
            raise DataError(f"{test_path}: line {n} is {shape!r}; expected <class>_<number> with a class from {names_path.name}")
        path = r / cls / f"{shape}.txt"
        if not path.is_file():
            raise DataError(f"{test_path}: line {n} names {shape!r}, but {path} does not exist")
        files.append(path)
        targets.append(index[cls])
    not_empty(files, "ModelNet40", test_path, "shapes")
    info = {"split file": str(test_path), "shapes": len(files), "classes": len(classes)}
    if check_limit(limit) and limit < len(files):
        files, targets, info["limit"] = files[:limit], targets[:limit], limit
        info["shapes"] = limit
    return ShapeSplit(classes, files, targets, info)


def read_shape(path: Path, n_points: int) -> np.ndarray:
    """A ``x,y,z,nx,ny,nz`` text file (commas; spaces accepted) -> (n_points, 3), centred and
    scaled into the unit ball by ``load_point_cloud``. Read with numpy, never unpickled."""
    rows = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            raise DataError(f"{path}: line {n} is not numbers separated by commas (x,y,z,nx,ny,nz): {line[:60]!r}") from None
        if len(values) < 3:
            raise DataError(f"{path}: line {n} has {len(values)} values; a point needs at least x,y,z")
        rows.append(values[:3])
    if not rows:
        raise DataError(f"{path} holds no points")
    return load_point_cloud(np.asarray(rows, dtype=np.float64), n_points=n_points)


def evaluate_modelnet40(split: ShapeSplit, scorer: Scorer, templates=TEMPLATES, n_points: int = 1024) -> Report:
    """Zero-shot classification: ``classify("3d", shapes, names, templates)`` with the class
    names' underscores read as spaces (``night_stand`` -> "night stand")."""
    from ..tasks.retrieval import check_templates, classify

    templates = check_templates(list(templates))
    labels = [c.replace("_", " ") for c in split.classes]
    path = scorer.plan("3d", "text")
    column = {label: j for j, label in enumerate(labels)}
    scores = torch.zeros(len(split.files), len(labels), dtype=torch.float64)
    for start in range(0, len(split.files), CHUNK):
        shapes = [read_shape(p, n_points) for p in split.files[start:start + CHUNK]]
        for i, c in enumerate(classify(path.source, shapes, labels, templates, top=None, path=path, graph=scorer.graph)):
            for label, p in c.ranked:
                scores[start + i, column[label]] = p
    acc = topk_accuracy(scores, split.targets, ks=(1, 3, 5))
    counts = {"shapes": len(split.files), "classes": len(labels)}
    k = len(labels)
    rows = {"chance": {"Acc@1": 1 / k, "Acc@3": min(3, k) / k, "Acc@5": min(5, k) / k} | counts,
            "result": {"Acc@1": acc["acc1"], "Acc@3": acc["acc3"], "Acc@5": acc["acc5"]} | counts}
    info = dict(split.info) | {"templates": list(templates), "points": n_points}
    return Report("ModelNet40", {"ModelNet40: zero-shot 3d classification": rows}, info)
