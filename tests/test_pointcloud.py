import numpy as np
import pytest

import mcrgraph
from mcrgraph.io.pointcloud import load_point_cloud


def cube(n=500, seed=0):
    return np.random.default_rng(seed).uniform(-3, 5, size=(n, 3))


def write_ply(path, pts, fmt="ascii"):
    header = f"ply\nformat {fmt} 1.0\ncomment test\nelement vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nend_header\n"
    with open(path, "wb") as f:
        f.write(header.encode())
        if fmt == "ascii":
            for p in pts:
                f.write(f"{p[0]} {p[1]} {p[2]} 7\n".encode())
        else:
            dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
            rec = np.zeros(len(pts), dtype=dt)
            rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
            f.write(rec.tobytes())


def test_all_formats_agree_and_are_normalised(tmp_path):
    pts = cube().astype(np.float32).astype(np.float64)
    np.save(tmp_path / "a.npy", pts)
    write_ply(tmp_path / "a.ply", pts)
    write_ply(tmp_path / "b.ply", pts, "binary_little_endian")
    (tmp_path / "a.obj").write_text("# obj\n" + "".join(f"v {x} {y} {z}\n" for x, y, z in pts) + "f 1 2 3\n")
    outs = [load_point_cloud(tmp_path / f, 256) for f in ("a.npy", "a.ply", "b.ply", "a.obj")] + [load_point_cloud(pts, 256)]
    for out in outs:
        assert out.shape == (256, 3) and out.dtype == np.float32
        assert np.allclose(out, outs[0], atol=1e-5)
    assert np.abs(outs[0].mean(axis=0)).max() < 1e-5 and np.isclose(np.linalg.norm(outs[0], axis=1).max(), 1, atol=1e-5)


def test_small_clouds_are_padded_and_sampling_is_deterministic():
    pts = cube(10)
    a, b = load_point_cloud(pts, 64), load_point_cloud(pts, 64)
    assert a.shape == (64, 3) and np.array_equal(a, b)
    assert not np.array_equal(load_point_cloud(pts, 64, seed=1), a)


@pytest.mark.parametrize("name,content,msg", [
    ("x.ply", b"not a ply", "not a PLY file"),
    ("x.ply", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\n2\n", "needs x, y, z"),
    ("x.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 9\nproperty float x\nproperty float y\nproperty float z\nend_header\n\x00\x00", "truncated"),
    ("x.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty double x\nproperty float y\nproperty float z\nend_header\n" + bytes(20), "names a property twice"),
    ("x.obj", b"v 1 2\n", "not a vertex of three numbers"),
    ("x.obj", b"f 1 2 3\n", "no vertices"),
    ("x.xyz", b"1 2 3", "unknown point cloud format"),
])
def test_bad_files_give_clear_errors(tmp_path, name, content, msg):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(mcrgraph.DataError, match=msg):
        load_point_cloud(tmp_path / name)


def test_npy_with_pickled_objects_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(mcrgraph.DataError, match="not a plain numeric .npy"):
        load_point_cloud(tmp_path / "o.npy")


def test_bad_arrays(tmp_path):
    with pytest.raises(mcrgraph.DataError, match="NaN or infinite"):
        load_point_cloud(np.array([[0, 0, np.nan]]))
    with pytest.raises(mcrgraph.DataError, match="shape"):
        load_point_cloud(np.zeros((4, 2)))
    with pytest.raises(mcrgraph.DataError, match="no points"):
        load_point_cloud(np.zeros((0, 3)))
    with pytest.raises(mcrgraph.DataError, match="does not exist"):
        load_point_cloud(tmp_path / "missing.ply")


def test_huge_coordinates_do_not_overflow():
    out = load_point_cloud(np.array([[1e308, 1e308, -1e308], [-1e308, 0, 1e308], [0, 0, 0]]), 8)
    assert np.isfinite(out).all() and np.isclose(np.linalg.norm(out, axis=1).max(), 1)
