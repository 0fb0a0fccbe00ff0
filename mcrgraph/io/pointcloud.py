"""Reading point clouds (``.npy``, ``.ply``, ``.obj`` or arrays) into fixed-size, normalised
(n_points, 3) float32 arrays, as 3D encoders (ULIP's PointBERT and the like) expect."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .files import readable_file

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
MAX_POINTS = 50_000_000  # a header claiming more is broken or hostile


def load_point_cloud(item: Any, n_points: int = 1024, seed: int = 0) -> np.ndarray:
    """``item`` (a path or an (N, >=3) array) -> (n_points, 3) float32, centred on its centroid
    and scaled into the unit ball. Sampling is seeded by ``seed`` and the points themselves,
    so the same cloud always gives the same result."""
    if isinstance(item, (str, Path)):
        xyz = read_points(Path(item))
        where = str(item)
    else:
        xyz, where = np.asarray(item), "array"
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise DataError(f"{where}: a point cloud is an (N, 3) array of xyz, got shape {xyz.shape}")
    if not np.issubdtype(xyz.dtype, np.number):
        raise DataError(f"{where}: point coordinates must be numbers, got {xyz.dtype}")
    xyz = xyz[:, :3].astype(np.float64)
    if len(xyz) == 0:
        raise DataError(f"{where}: the point cloud has no points")
    if not np.isfinite(xyz).all():
        raise DataError(f"{where}: the point cloud has NaN or infinite coordinates")
    digest = hashlib.sha256(np.ascontiguousarray(xyz).tobytes()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    idx = rng.choice(len(xyz), n_points, replace=len(xyz) < n_points)
    pts = xyz[idx]
    big = np.abs(pts).max()
    if big > 0:  # pre-scale so that huge coordinates cannot overflow the mean or the norms
        pts = pts / big
    pts = pts - pts.mean(axis=0)
    scale = np.linalg.norm(pts, axis=1).max()
    if scale > 0:
        pts = pts / scale
    return pts.astype(np.float32)


def read_points(path: Path) -> np.ndarray:
    """The vertices of a ``.npy``, ``.ply`` (ascii or binary) or ``.obj`` file, as an array."""
    path = readable_file(path, "point cloud file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            try:
                return np.load(path, allow_pickle=False)  # never unpickle objects from a file
            except ValueError as e:
                raise DataError(f"{path}: not a plain numeric .npy array ({e})") from None
        if suffix == ".ply":
            return _read_ply(path)
        if suffix == ".obj":
            return _read_obj(path)
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    raise DataError(f"{path}: unknown point cloud format {suffix!r}; use .npy, .ply or .obj")


def _read_obj(path: Path) -> np.ndarray:
    rows = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.startswith(b"v "):
                parts = raw.split()[1:4]
                try:
                    rows.append([float(p) for p in parts])
                except ValueError:
                    raise DataError(f"{path}: line {n} is not a vertex of three numbers") from None
                if len(parts) < 3:
                    raise DataError(f"{path}: line {n} is not a vertex of three numbers")
    if not rows:
        raise DataError(f"{path}: no vertices ('v x y z' lines) found")
    return np.asarray(rows)


def _read_ply(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        if f.readline().strip() != b"ply":
            raise DataError(f"{path}: not a PLY file (no 'ply' magic line)")
        fmt, elements, current = None, [], None
        for _ in range(10_000):
            line = f.readline()
            if not line:
                raise DataError(f"{path}: PLY header has no end_header")
            words = line.decode("ascii", "replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "end_header":
                break
            if words[0] == "format" and len(words) >= 2:
                fmt = words[1]
            elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
                current = (words[1], int(words[2]), [])
                elements.append(current)
            elif words[0] == "property" and current is not None and len(words) >= 3:
                if words[1] == "list":
                    current[2].append(("list", None))
                elif words[1] in _PLY_TYPES:
                    current[2].append((words[2], _PLY_TYPES[words[1]]))
                else:
                    raise DataError(f"{path}: unknown PLY property type {words[1]!r}")
            else:
                raise DataError(f"{path}: bad PLY header line {line[:60]!r}")
        else:
            raise DataError(f"{path}: PLY header too long")
        if not elements or elements[0][0] != "vertex":
            raise DataError(f"{path}: the PLY file's first element must be 'vertex'")
        _, count, props = elements[0]
        names = [p for p, _ in props]
        if len(set(names)) != len(names):
            raise DataError(f"{path}: the PLY vertex element names a property twice")
        if count > MAX_POINTS or any(t is None for _, t in props) or not {"x", "y", "z"} <= set(names):
            raise DataError(f"{path}: the PLY vertex element needs x, y, z scalar properties and at most {MAX_POINTS:,} vertices")
        if fmt == "ascii":
            rows = []
            for i in range(count):
                words = f.readline().split()
                if len(words) < len(props):
                    raise DataError(f"{path}: vertex {i} has {len(words)} values, expected {len(props)}")
                try:
                    rows.append([float(words[names.index(k)]) for k in ("x", "y", "z")])
                except ValueError:
                    raise DataError(f"{path}: vertex {i} is not numeric") from None
            return np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        if fmt in ("binary_little_endian", "binary_big_endian"):
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(p, order + t) for p, t in props])
            data = f.read(dtype.itemsize * count)
            if len(data) < dtype.itemsize * count:
                raise DataError(f"{path}: PLY body is truncated ({len(data)} of {dtype.itemsize * count} bytes)")
            verts = np.frombuffer(data, dtype=dtype, count=count)
            return np.stack([verts["x"], verts["y"], verts["z"]], axis=1).astype(np.float64)
        raise DataError(f"{path}: unknown PLY format {fmt!r}")
