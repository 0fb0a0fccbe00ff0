"""The real-voices split of the mini world from the Free Spoken Digit Dataset (FSDD):

    python -m mcrgraph_mini.build_fsdd --recordings DIR [--out FILE]

DIR is the ``recordings`` folder of a clone of https://github.com/Jakobovski/free-spoken-digit-dataset
(commit ``COMMIT`` holds 3,000 files named ``{digit}_{speaker}_{take}.wav``, 8 kHz mono 16-bit PCM,
as its README says). Takes 0-9 of every digit and speaker (600 recordings, six real speakers the
mini towers never heard) become ``data/fsdd.npz``: the same uint8 log-mels as every held-out voice
(``features.log_mel`` of the file as it is), each clip's concept id in ``world.json``, its speaker
and take, and the SHA-256 of the file it came from. FSDD is CC-BY-SA-4.0 (its README); see
``data/SOURCES.md``. Nothing is downloaded here: clone the dataset first."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from .build_audio import BuildError
from .features import log_mel, read_audio

COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # FSDD's metadata.py
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TAKES = range(10)  # FSDD's official test takes are 0-4; 0-9 gives 10 per digit and speaker
SOURCE = "fsdd"


def build(recordings: Path, world_json: Path, takes=TAKES) -> dict[str, np.ndarray]:
    """The split's arrays from an FSDD ``recordings`` folder; a missing file is a BuildError."""
    names = [c["name"] for c in json.loads(Path(world_json).read_text())["concepts"]]
    missing = [d for d in DIGITS if d not in names]
    if missing:
        raise BuildError(f"{world_json} has no concept for the digits {missing}")
    audio, concept, speaker, take, digest = [], [], [], [], []
    for d, word in enumerate(DIGITS):
        for s in SPEAKERS:
            for t in takes:
                path = Path(recordings) / f"{d}_{s}_{t}.wav"
                if not path.is_file():
                    raise BuildError(f"{path} is missing: DIR must be the recordings folder of a clone of "
                                     f"https://github.com/Jakobovski/free-spoken-digit-dataset (commit {COMMIT})")
                raw = path.read_bytes()
                audio.append(log_mel(*read_audio(path)))
                concept.append(names.index(word))
                speaker.append(s)
                take.append(t)
                digest.append(hashlib.sha256(raw).hexdigest())
    return {"audio": np.stack(audio), "audio_concept": np.array(concept, np.int16),
            "audio_source": np.array([f"{SOURCE}-{s}" for s in speaker]), "audio_take": np.array(take, np.int8),
            "audio_sha256": np.array(digest)}


def main(argv: list[str] | None = None) -> None:
    from mcrgraph.store.disk import atomic_write_bytes

    from .world import DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recordings", type=Path, required=True, help="the recordings folder of an FSDD clone")
    p.add_argument("--out", type=Path, default=DATA / "fsdd.npz", help="where to write the split (default: the shipped data/fsdd.npz)")
    p.add_argument("--world", type=Path, default=DATA / "world.json", help="the world whose concept ids the clips get")
    args = p.parse_args(argv)
    try:
        arrays = build(args.recordings, args.world)
    except BuildError as e:
        raise SystemExit(f"error: {e}") from None
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(args.out, buf.getvalue())  # a crash never leaves half a split
    print(f"wrote {args.out}: {len(arrays['audio'])} recordings, {len(SPEAKERS)} speakers")


if __name__ == "__main__":
    main()
