"""The mini towers' input functions: every item kind in, one fixed shape out; bad input is a
DataError that says what was expected."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
from PIL import Image

from mcrgraph.errors import DataError
from mcrgraph_mini import features
from mcrgraph_mini.oracle import concept_pairs


def _word(sr: int, seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    env = np.exp(-((t - seconds / 2) ** 2) / 0.01)
    rng = np.random.default_rng(seed)
    return (0.5 * env * np.sin(2 * np.pi * (300 + 400 * t) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_audio_from_files_and_waves_at_any_rate(tmp_path):
    for sr in (8000, 22050, 48000):
        path = tmp_path / f"w{sr}.wav"
        soundfile.write(path, _word(sr), sr)
        mel = features.audio_input(str(path))
        assert mel.shape == (features.N_MELS, features.FRAMES) and mel.dtype == np.uint8
        assert mel.max() == 255  # the loudest bin
    wave = _word(features.SAMPLE_RATE)
    path = tmp_path / "w16000.wav"
    soundfile.write(path, wave, features.SAMPLE_RATE, subtype="FLOAT")
    assert np.array_equal(features.audio_input(wave), features.audio_input(str(path)))  # a wave is a file's content
    # overall gain does not matter (up to one quantisation step)
    diff = features.audio_input(wave).astype(int) - features.audio_input(wave * 0.1).astype(int)
    assert np.abs(diff).max() <= 1
    mel = features.audio_input(wave)
    assert features.audio_input(mel) is mel  # an already computed log-mel passes through


def test_long_audio_is_cropped_around_the_loud_part():
    sr = features.SAMPLE_RATE
    quiet = np.zeros(sr * 3, np.float32)
    loud = _word(sr)
    quiet[2 * sr : 2 * sr + len(loud)] = loud
    mel = features.audio_input(quiet).astype(float)
    assert mel[:, 30:100].mean() > mel[:, :10].mean() + 20  # the word sits in the middle, not cut away


@pytest.mark.parametrize("bad, why", [
    (np.array([], np.float32), "non-empty"),
    (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
    (np.zeros((3, 3, 3)), "file paths"),
])
def test_bad_audio(bad, why):
    with pytest.raises(DataError, match=why):
        features.audio_input(bad)


def test_unreadable_sound_file(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFF not really")
    with pytest.raises(DataError, match="cannot read it as a sound file"):
        features.audio_input(str(path))


def test_images_from_paths_pil_and_arrays(tmp_path):
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    rgba.putpixel((10, 10), (0, 0, 255, 255))
    path = tmp_path / "e.png"
    rgba.save(path)
    from_path = features.image_input(str(path))
    assert from_path.shape == (32, 32, 3) and from_path.dtype == np.uint8
    assert tuple(from_path[0, 0]) == (255, 255, 255)  # transparent pixels sit on white
    assert np.array_equal(from_path, features.image_input(rgba))
    gray = features.image_input(np.random.default_rng(0).random((8, 8)))
    assert gray.shape == (32, 32, 3) and (gray[..., 0] == gray[..., 1]).all()
    ready = np.zeros((32, 32, 3), np.uint8)
    assert features.image_input(ready) is ready


@pytest.mark.parametrize("bad, why", [
    (np.full((8, 8), np.nan), "NaN"),
    (np.zeros((8, 8), np.int32), "uint8"),
    (np.zeros((8, 8, 2), np.uint8), r"\(H, W\)"),
    (np.zeros((0, 8), np.uint8), r"\(H, W\)"),
])
def test_bad_images(bad, why):
    with pytest.raises(DataError, match=why):
        features.image_input(bad)


def test_unreadable_image_file(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="cannot read it as an image"):
        features.image_input(str(path))


def test_points_are_fixed_size_and_normalised():
    cloud = np.random.default_rng(0).standard_normal((5000, 3)) * 7 + 3
    p = features.points_input(cloud)
    assert p.shape == (features.POINTS, 3) and p.dtype == np.float32
    assert np.abs(p.mean(axis=0)).max() < 0.1 and np.linalg.norm(p, axis=1).max() <= 1 + 1e-5


def test_oracle_pairs_match_concepts():
    a = np.array([0, 0, 1, 2, 2, 2])
    b = np.array([2, 1, 1, 3])
    ia, ib = concept_pairs(a, b, per_concept=4, seed=0)
    assert len(ia) == 8 and (a[ia] == b[ib]).all()  # concepts 1 and 2 only: 3 has no audio, 0 no image
