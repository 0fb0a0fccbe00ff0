"""Helpers shared by the benchmarks: thread pinning, median timing, synthetic unit vectors,
the machine description, result rows and atomic file writes."""
from __future__ import annotations

import contextlib
import datetime
import os
import json
import platform
import statistics
import subprocess
import tempfile
import time
from typing import Callable

import torch


@contextlib.contextmanager
def threads(n: int):
    """Run the block with exactly ``n`` torch threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    return statistics.median(time_calls(fn, repeats, warmup))


def unit_rows(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random unit vectors of dim ``d`` (normalised in place: no second n x d copy)."""
    x = torch.randn(n, d, generator=gen)
    return x.div_(x.norm(dim=1, keepdim=True))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def machine_busy_s() -> float:
    """CPU-seconds all processes have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds of this process and its finished children."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def figure(name: str, value: float, unit: str, baseline_name: str, baseline_value: float, note: str = "") -> dict:
    """One reported figure with the baseline it is compared to; ratio = value / baseline."""
    ratio = value / baseline_value if baseline_value else float("nan")
    return {"name": name, "value": value, "unit": unit, "baseline": baseline_name,
            "baseline_value": baseline_value, "ratio": ratio, "note": note}


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to a temp file next to ``path``, then rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "n/a"


def measured(fn: Callable[[], dict]) -> dict:
    """``fn()``'s result dict, with the machine and its load around the call: ``machine``,
    ``runtime_s``, ``uptime_before``/``_after``, ``own_cores`` (this process and its finished
    children) and ``other_cores_busy`` (everything else, from /proc/stat), both averaged."""
    info = machine()
    load_before, busy0, own0, t0 = uptime(), machine_busy_s(), own_cpu_s(), time.perf_counter()
    r = fn()
    wall = time.perf_counter() - t0
    own = own_cpu_s() - own0
    r.update(machine=info, runtime_s=wall, uptime_before=load_before, uptime_after=uptime(),
             other_cores_busy=max(0.0, (machine_busy_s() - busy0) - own) / wall, own_cores=own / wall)
    return r


def report(r: dict, text: str, out: str) -> None:
    """Print ``text``; with ``out`` (a path stem), write ``out.json`` (``r``) and ``out.md`` atomically."""
    print(text)
    if out:
        write_atomic(out + ".json", json.dumps(r, indent=2, default=str) + "\n")
        write_atomic(out + ".md", text)
