"""The mini world's real-voices split (``data/fsdd.npz``, issue 25): 600 recordings of the Free
Spoken Digit Dataset, six real speakers the mini towers never heard. Facts about FSDD's files
come from its README (https://github.com/Jakobovski/free-spoken-digit-dataset, commit
26eb9aaf): files are named ``{digitLabel}_{speakerName}_{index}.wav``, "mono 8kHz wav files",
50 takes of each digit per speaker, six speakers (metadata.py); the one file read here,
0_jackson_0.wav, has a RIFF header of PCM, 1 channel, 8000 Hz, 16 bits."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

import mcrgraph
from mcrgraph_mini import build_fsdd
from mcrgraph_mini.build_audio import BuildError
from mcrgraph_mini.evaluate import REAL_VOICES, audio_groups, audio_items
from mcrgraph_mini.features import FRAMES, N_MELS, log_mel, read_audio
from mcrgraph_mini.world import DATA, bundled


def test_the_shipped_split_holds_ten_takes_of_every_digit_by_six_speakers():
    world = bundled()
    data = world.split("fsdd")
    names = [c.name for c in world.concepts]
    assert data["audio"].shape == (600, N_MELS, FRAMES) and data["audio"].dtype == np.uint8
    words = [names[c] for c in data["audio_concept"]]
    assert sorted(set(words)) == sorted(build_fsdd.DIGITS)
    assert all(world.concepts[c].kind == "digit" for c in data["audio_concept"])
    speakers = data["audio_source"].astype(str)
    assert set(speakers) == {f"fsdd-{s}" for s in build_fsdd.SPEAKERS}
    for word in build_fsdd.DIGITS:  # every digit: 10 takes (0-9) by each speaker
        for s in build_fsdd.SPEAKERS:
            takes = data["audio_take"][(np.array(words) == word) & (speakers == f"fsdd-{s}")]
            assert sorted(takes.tolist()) == list(range(10))
    assert len(set(data["audio_sha256"].tolist())) == 600  # 600 different files
    assert len({a.tobytes() for a in data["audio"]}) == 600


def test_real_voices_are_one_audio_group_after_the_held_out_split():
    world = bundled()
    ids, labels = audio_items(world)
    n = len(world.arrays("heldout", "audio")[1])
    groups = audio_groups(world)
    assert len(ids) == len(labels) == n + 600
    assert ids[n] == "mini:fsdd/audio/0" and labels[n] == world.arrays("fsdd", "audio")[1][0]
    assert groups[REAL_VOICES].sum() == 600 and not groups[REAL_VOICES][:n].any()
    for name, mask in groups.items():  # the other groups are the held-out split's, as before
        if name != REAL_VOICES:
            assert not mask[n:].any()


def test_mini_clap_hears_the_real_voices():
    """The premise of the group: mini-clap's own audio->text R@1 among the ten digit captions is far
    above chance (0.1); 0.748 measured (docs/results/fsdd-real-voices)."""
    world = bundled()
    clap = mcrgraph.get_mcr("mini-clap")
    lab = world.arrays("fsdd", "audio")[1]
    concepts = sorted(set(lab.tolist()))
    audio = mcrgraph.embed(clap, "audio", world.ids("fsdd", "audio"))
    text = mcrgraph.embed(clap, "text", [world.concepts[c].audio_captions[0] for c in concepts])
    top = np.array(concepts)[(audio @ text.T).argmax(1).numpy()]
    assert (top == lab).mean() > 0.5
    # a bundled id is the stored log-mel, as the array itself
    assert np.allclose(mcrgraph.embed(clap, "audio", ["mini:fsdd/audio/7"]).numpy(),
                       clap.encode("audio", [world.split("fsdd")["audio"][7]]).numpy(), atol=1e-6)


def _recordings(folder, takes):
    """Files as FSDD ships them: {digit}_{speaker}_{take}.wav, mono 8 kHz 16-bit PCM, a short voiced sound."""
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    for d in range(10):
        for s in build_fsdd.SPEAKERS:
            for k in takes:
                wave = 0.3 * np.sin(2 * np.pi * (150 + 40 * d + 5 * k) * t) * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
                soundfile.write(folder / f"{d}_{s}_{k}.wav", wave, 8000, subtype="PCM_16")


def test_the_builder_reads_fsdd_files_as_they_are(tmp_path):
    _recordings(tmp_path, takes=[0, 1])
    info = soundfile.info(str(tmp_path / "0_jackson_0.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")  # FSDD's format
    arrays = build_fsdd.build(tmp_path, DATA / "world.json", takes=[0, 1])
    assert arrays["audio"].shape == (120, N_MELS, FRAMES)
    names = [c.name for c in bundled().concepts]
    first = tmp_path / "0_george_0.wav"
    assert np.array_equal(arrays["audio"][0], log_mel(*read_audio(first)))  # the file as it is, as the held-out voices
    assert names[arrays["audio_concept"][0]] == "zero" and arrays["audio_source"][0] == "fsdd-george"
    assert names[arrays["audio_concept"][-1]] == "nine" and arrays["audio_take"][-1] == 1
    import hashlib
    assert arrays["audio_sha256"][0] == hashlib.sha256(first.read_bytes()).hexdigest()


def test_the_builder_says_where_to_get_a_missing_recording(tmp_path):
    _recordings(tmp_path, takes=[0])
    with pytest.raises(BuildError, match="free-spoken-digit-dataset"):
        build_fsdd.build(tmp_path, DATA / "world.json", takes=[0, 1])
    out = tmp_path / "out.npz"
    with pytest.raises(SystemExit, match="1_george_0.wav is missing|0_george_1.wav is missing"):
        build_fsdd.main(["--recordings", str(tmp_path), "--out", str(out)])
    assert not out.exists()  # nothing half-written
