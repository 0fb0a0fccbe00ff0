"""Replacing a stored folder (a connector saved with --overwrite, a checkpoint): no instant, and
no kill, leaves neither version.

store/disk.atomic_dir swaps the new folder in with renameat2(RENAME_EXCHANGE) where the kernel
and file system can (Linux >= 3.15 on ext4, tmpfs, xfs, btrfs; man 2 rename), and elsewhere
moves the old one aside before renaming the new one in; `recover` puts a set-aside copy back."""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from filelock import FileLock

import mcrgraph
from mcrgraph.store import connectors, disk
from conftest import CAPTIONS, QUICK


def write(folder, text, overwrite=True):
    with disk.atomic_dir(folder, overwrite=overwrite) as tmp:
        (tmp / "a").write_text(text)
        (tmp / "b").write_text(text)


def versions(folder):
    """The folder's version, checked whole: both files of one write."""
    a, b = (folder / "a").read_text(), (folder / "b").read_text()
    assert a == b, "a torn folder: files of two writes"
    return a


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.endswith((".tmp", ".old")))


@pytest.fixture
def no_exchange(monkeypatch):
    """The file systems that cannot swap in one step (macOS, some network and overlay mounts)."""
    monkeypatch.setattr(disk, "_exchange", lambda a, b: False)


class Killed(BaseException):
    """Stands for SIGKILL between two renames: nothing after it runs, no handler cleans up."""


@contextlib.contextmanager
def killed_between_renames():
    """Kill when the new folder is about to be renamed in and the old one is already aside."""
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp") and disk.set_aside(Path(dst)) is not None:
            raise Killed
        real(src, dst)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(Killed):
        mp.setattr(disk.os, "replace", replace)
        yield


def test_overwrite_swaps_in_one_step_and_leaves_nothing(tmp_path):
    final = tmp_path / "thing"
    write(final, "old")
    if not disk._exchange(tmp_path / "thing", tmp_path / "thing"):  # a swap with itself is a no-op where it is supported
        pytest.skip(f"{tmp_path} cannot swap in one step; the set-aside tests below cover it")
    write(final, "new")
    assert versions(final) == "new" and leftovers(tmp_path) == []


def test_a_reader_never_sees_the_folder_missing_while_it_is_replaced(tmp_path):
    """A second process polls the folder while this one replaces it 300 times."""
    final = tmp_path / "thing"
    write(final, "0")
    poll = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys
        missing = polls = 0
        print("ready", flush=True)
        while not os.path.exists({str(tmp_path / 'stop')!r}):
            missing += not os.path.isdir({str(final)!r})
            polls += 1
        print(missing, polls)
    """)], stdout=subprocess.PIPE, text=True)
    assert poll.stdout.readline().strip() == "ready"  # polling before the first write
    for k in range(300):
        write(final, str(k))
    (tmp_path / "stop").touch()
    missing, polls = map(int, poll.communicate(timeout=60)[0].split())
    assert polls > 300  # it looked more often than the folder was replaced
    if disk._exchange(final, final):
        assert missing == 0
    assert versions(final) == "299" and leftovers(tmp_path) == []


def test_killed_between_the_two_renames_the_old_version_is_put_back(tmp_path, no_exchange, monkeypatch):
    final = tmp_path / "thing"
    write(final, "old")
    with killed_between_renames():
        write(final, "new")
    assert not final.exists() and disk.set_aside(final) is not None  # the instant the kill left
    assert disk.recover(final)
    assert versions(final) == "old" and not list(tmp_path.glob(".thing.*.old"))
    assert not disk.recover(final)  # nothing left to put back


def test_a_failing_second_rename_keeps_the_old_version(tmp_path, no_exchange, monkeypatch):
    final = tmp_path / "thing"
    write(final, "old")
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(disk.os, "replace", replace)
    with pytest.raises(mcrgraph.StoreError, match="old version is kept"):
        write(final, "new")
    assert versions(final) == "old" and leftovers(tmp_path) == []


def test_recover_leaves_a_live_writers_set_aside_copy_alone(tmp_path, no_exchange, monkeypatch):
    """A writer holds the swap lock from before it sets the old copy aside until the new one is
    in; a reader that put the old one back in between would make the writer fail."""
    final = tmp_path / "thing"
    write(final, "old")
    with killed_between_renames():
        write(final, "new")
    with FileLock(tmp_path / ".thing.swap"):  # the live writer
        assert not disk.recover(final, timeout=0.2)
        assert not final.exists()
    assert disk.recover(final) and versions(final) == "old"


def test_a_connector_killed_mid_overwrite_is_found_listed_and_loaded(fakes, store, no_exchange, monkeypatch):
    first = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name="kept", config=QUICK)
    with killed_between_renames():
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name="kept", overwrite=True, config={**QUICK, "seed": 1})
    folder = store / "connectors" / "kept"
    assert not folder.exists()
    good, bad = connectors.list_cards()  # puts it back
    assert list(good) == ["kept"] and bad == {} and folder.is_dir()
    assert good["kept"][1].weights_sha256 == first.card.weights_sha256
    assert not list((store / "connectors").glob(".kept.*.old"))


@pytest.mark.parametrize("put_back_by", ["get_mcr", "remove", "connect"])
def test_lookups_by_name_put_a_set_aside_connector_back(fakes, store, no_exchange, monkeypatch, put_back_by):
    first = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name="kept", config=QUICK)
    with killed_between_renames():
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name="kept", overwrite=True, config={**QUICK, "seed": 1})
    if put_back_by == "get_mcr":
        assert mcrgraph.get_mcr("kept").card.weights_sha256 == first.card.weights_sha256
    elif put_back_by == "connect":  # the name is taken: said before training, not after
        with pytest.raises(mcrgraph.ConfigError, match="exists already"):
            mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, name="kept", config=QUICK)
        assert connectors.list_cards()[0]["kept"][1].weights_sha256 == first.card.weights_sha256
    else:
        connectors.remove("kept")
        assert connectors.list_cards() == ({}, {})


WRITERS = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from mcrgraph.store import disk
    if sys.argv[2] == "no-exchange":
        disk._exchange = lambda a, b: False
    final = Path(sys.argv[1])
    for line in sys.stdin:  # "go": fork a writer (mcrgraph is imported once); "reap": wait for its death
        if line.strip() == "reap":
            os.wait()
            print("dead", flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            k = 0
            while True:
                k += 1
                with disk.atomic_dir(final, overwrite=True) as tmp:
                    (tmp / "a").write_text(str(k) * 1000)
                    (tmp / "b").write_text(str(k) * 1000)
        print(pid, flush=True)
""")


@pytest.mark.parametrize("mode", ["exchange", "no-exchange"])
def test_sigkill_while_overwriting_in_a_loop_always_leaves_one_whole_version(tmp_path, mode):
    """Real kills at random instants of writers that replace the folder as fast as they can. Without
    the swap, about 1 kill in 200 lands between the two renames (measured); recover puts it back."""
    final = tmp_path / "thing"
    write(final, "0" * 1000)
    forker = subprocess.Popen([sys.executable, "-c", WRITERS, str(final), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for k in range(30):
            forker.stdin.write("go\n"), forker.stdin.flush()
            pid = int(forker.stdout.readline())
            time.sleep(0.005 + 0.003 * k)
            os.kill(pid, signal.SIGKILL)
            forker.stdin.write("reap\n"), forker.stdin.flush()
            assert forker.stdout.readline().strip() == "dead"
            disk.recover(final)
            assert final.is_dir(), f"kill {k}: no version left"
            versions(final)
    finally:
        forker.stdin.close()
        forker.wait(timeout=60)
