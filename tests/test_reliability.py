"""Faults and hostile input: killed runs, concurrent writers, unwritable stores, foreign files."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import mcrgraph
from mcrgraph.store import connectors
from mcrgraph.cli import cli
from mcrgraph.store.safeload import load_torch_weights
from conftest import CAPTIONS, QUICK

JOB = textwrap.dedent('''
    import sys
    import mcrgraph
    texts = [f"c{k}#{v}" for v in range(2) for k in range(300)]
    mem = {"image": [f"c{k}#11" for k in range(300)], "audio": [f"c{k}#21" for k in range(300)]}
    space = mcrgraph.connect("synth-clip", "synth-clap", via="text", items=texts, memories=mem, name=sys.argv[1],
                             epochs=int(sys.argv[2]), batch_size=64, resume=sys.argv[3] == "resume", save=sys.argv[4] == "save")
    print(space.card.weights_sha256)
''')


def job(home, name, epochs, resume=False, save=True, wait=True):
    env = {**os.environ, "MCRGRAPH_HOME": str(home)}
    args = [sys.executable, "-c", JOB, name, str(epochs), "resume" if resume else "fresh", "save" if save else "nosave"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out.strip(), err


def cache_entries_load(home):
    entries = list((home / "cache").rglob("*.safetensors"))
    for e in entries:
        load_file(e)  # raises on a torn file
    return len(entries)


def epoch_of(state) -> int:
    """The epoch in a checkpoint's state.json, or -1 while there is none: the checkpoint folder is
    replaced by a rename, after the one before is set aside, so for an instant it is absent."""
    try:
        return json.loads(state.read_text() or "{}").get("epoch", -1)
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


def test_sigkill_leaves_no_partial_connector_and_resume_reaches_the_same_weights(store):
    proc = job(store, "killed", 120, wait=False)
    state = store / "checkpoints" / "killed" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if epoch_of(state) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (store / "connectors" / "killed").exists()
    assert connectors.list_cards() == ({}, {})
    assert cache_entries_load(store) == 4  # texts in both spaces, one memory each
    killed_at = epoch_of(state)  # -1 if killed while a checkpoint replaced the one before: resume finds that one set aside
    assert killed_at == -1 or 3 <= killed_at < 119

    code, resumed, err = job(store, "killed", 120, resume=True)
    assert code == 0, err
    code, straight, err = job(store, "straight", 120, save=False)
    assert code == 0, err
    assert resumed == straight  # sha256 of the final weights
    assert not (store / "checkpoints" / "killed").exists()
    assert mcrgraph.get_mcr("killed").card.weights_sha256 == resumed


def test_resume_finds_the_checkpoint_set_aside_when_killed_mid_replacement(store):
    """store/disk.atomic_dir replaces a folder by moving the old one aside (.NAME.*.old/x), then
    renaming the new one in; a kill between the two leaves no NAME, only the set-aside copy."""
    from mcrgraph.store.checkpoints import Checkpointer

    first = Checkpointer("mid", job="j")
    first.save({"w": torch.arange(3.0)}, {"epoch": 4})
    aside = store / "checkpoints" / ".mid.k1ll.old"
    aside.mkdir()
    os.replace(first.folder, aside / "x")  # the instant atomic_dir was killed in
    tensors, meta = Checkpointer("mid", job="j", resume=True).load()
    assert torch.equal(tensors["w"], torch.arange(3.0)) and meta["epoch"] == 4
    Checkpointer("mid", job="j").clear()  # a finished run leaves nothing behind, the set-aside copy included
    assert not aside.exists()
    with pytest.raises(mcrgraph.ConfigError, match="nothing to resume"):
        Checkpointer("mid", job="j", resume=True).load()


def test_resume_refuses_another_job(store):
    proc = job(store, "r", 200, wait=False)
    state = store / "checkpoints" / "r" / "state.json"
    while proc.poll() is None and not state.exists():
        time.sleep(0.01)
    proc.kill(), proc.wait()
    code, _, err = job(store, "r", 150, resume=True)  # other epochs: another job
    assert code != 0 and "is of another job" in err


def test_resume_without_checkpoint(fakes):
    with pytest.raises(mcrgraph.ConfigError, match="nothing to resume"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, resume=True)


def test_two_processes_write_store_and_cache_at_once(store):
    procs = [job(store, name, 30, wait=False) for name in ("one", "two")]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], [r[1] for r in results]
    good, bad = connectors.list_cards()
    assert set(good) == {"one", "two"} and not bad
    assert cache_entries_load(store) == 4
    a, b = (mcrgraph.get_mcr(n) for n in ("one", "two"))
    assert a.card.weights_sha256 == b.card.weights_sha256  # same job, same weights


def test_two_processes_racing_for_one_name(store):
    procs = [job(store, "same", 30, wait=False) for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes[0] == 0
    if codes[1] != 0:
        loser = next(r for r in results if r[2] != 0)[1]
        assert any(m in loser for m in ("already exists", "exists already", "created by another process", "at the same time", "training a connector named 'same' right now"))
    assert set(connectors.list_cards()[0]) == {"same"}
    mcrgraph.embed(mcrgraph.get_mcr("same"), "audio", ["c1"])  # the stored one is whole


def test_a_second_trainer_of_one_name_is_refused_while_the_first_holds_it(store):
    from mcrgraph.store.checkpoints import Checkpointer

    with Checkpointer("held", job="j"):
        with pytest.raises(mcrgraph.StoreError, match="training a connector named 'held' right now"):
            with Checkpointer("held", job="j"):
                pass
        with Checkpointer("other", job="j"):  # another name is free
            pass
    with Checkpointer("held", job="j"):  # released on exit
        pass


def test_mcrgraph_imports_and_locks_without_fcntl(store):
    """As on Windows: no fcntl module at all (filelock falls back to its own portable lock)."""
    code = textwrap.dedent('''
        import sys
        sys.modules["fcntl"] = None  # any `import fcntl` now raises ImportError
        import mcrgraph
        from mcrgraph.store.checkpoints import Checkpointer
        with Checkpointer("w", job="j"):
            try:
                with Checkpointer("w", job="j"):
                    print("not refused")
            except mcrgraph.StoreError:
                print("refused")
    ''')
    env = {**os.environ, "MCRGRAPH_HOME": str(store)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused"


def test_read_only_store(fakes, store, monkeypatch):
    def refuse(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("mcrgraph.store.disk.tempfile.mkdtemp", refuse)
    monkeypatch.setattr("mcrgraph.store.disk.tempfile.mkstemp", refuse)
    assert mcrgraph.embed(fakes["fa"], "text", ["k1"]).shape == (1, 8)  # the cache only warns
    with pytest.raises(mcrgraph.StoreError, match="Read-only file system"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    result = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--items", _captions(store)])
    assert result.exit_code == 1 and "Read-only file system" in result.output and "Traceback" not in result.output


def _captions(store):
    path = store.parent / "captions.txt"
    path.write_text("\n".join(CAPTIONS))
    return str(path)


def test_full_disk_while_storing(fakes, store, monkeypatch):
    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mcrgraph.store.disk.os.fsync", lambda fd: full(fd, b""))
    with pytest.raises(mcrgraph.StoreError, match="No space left on device; nothing was stored"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    for folder in ("connectors", "checkpoints"):  # no temp folder left behind
        assert not [p for p in (store / folder).glob("*") if not p.name.endswith(".lock")] if (store / folder).exists() else True


def test_pickle_payload_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"Head_A.0.weight": torch.zeros(2, 2), "x": Payload()}, path)
    with pytest.raises(mcrgraph.ConnectorFileError, match="refused to load .*evil.pt: it holds Python objects"):
        load_torch_weights(path)
    assert not marker.exists()


def test_safe_loader_reads_plain_weights_and_rejects_junk(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.arange(3.0)}, good)
    assert torch.equal(load_torch_weights(good)["w"], torch.arange(3.0))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(good.read_bytes()[:40])
    with pytest.raises(mcrgraph.ConnectorFileError, match="not a readable torch checkpoint"):
        load_torch_weights(junk)
    with pytest.raises(mcrgraph.ConnectorFileError, match="does not exist"):
        load_torch_weights(tmp_path / "none.pt")


def test_card_dim_differs_from_installed_plugin(fakes, store):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    card = store / "connectors" / "fa+fb" / "card.json"
    data = json.loads(card.read_text())
    data["spaces"][1]["dim"] = 7
    card.write_text(json.dumps(data))
    with pytest.raises(mcrgraph.ConnectorMismatchError, match="trained on 'fb' with dim 7; the installed one has dim 6"):
        mcrgraph.embed(mcrgraph.get_mcr("fa+fb"), "audio", ["k1"])


def test_items_file_with_a_huge_line(tmp_path):
    from mcrgraph.io.items import read_items

    path = tmp_path / "huge.txt"
    path.write_text("ok\n" + "x" * 200_000 + "\n")
    with pytest.raises(mcrgraph.DataError, match="line 2 has 200,000 characters"):
        read_items(path, "text")


def test_one_item_data(fakes):
    assert mcrgraph.embed(fakes["fa"], "text", ["k1"]).shape == (1, 8)
    with pytest.raises(mcrgraph.DataError, match="at least 4 via items, got 1"):
        mcrgraph.connect("fa", "fb", via="text", items=["k1"], config=QUICK)
