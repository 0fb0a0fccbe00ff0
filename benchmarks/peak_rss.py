"""Peak RSS of mcrgraph's readout precompute, in a fresh process so that nothing else done by
the benchmark run counts towards the peak. Run as
``python -m benchmarks.peak_rss N_VIA N_MEM DIM THREADS``; prints one JSON line.

Two peak figures are read: ``getrusage().ru_maxrss`` and ``VmHWM`` of /proc/self/status. On
Linux ru_maxrss survives execve, so in a child of a big process it starts at the parent's RSS
at fork time; VmHWM belongs to the new process image only, so the report uses VmHWM and shows
ru_maxrss next to it."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise KeyError(key)


def measure(n_via: int, n_mem: int, d: int, n_threads: int) -> dict:
    """Run the measurement in a subprocess and return its result."""
    cmd = [sys.executable, "-m", "benchmarks.peak_rss", str(n_via), str(n_mem), str(d), str(n_threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n_via: int, n_mem: int, d: int, n_threads: int) -> None:
    import torch

    from mcrgraph.methods.losses import memory_readout

    from .common import unit_rows

    torch.set_num_threads(n_threads)
    gen = torch.Generator().manual_seed(0)
    via, memory = unit_rows(n_via, d, gen), unit_rows(n_mem, d, gen)
    before, hwm_before, maxrss_before = _status_bytes("VmRSS"), _status_bytes("VmHWM"), _max_rss_bytes()
    t0 = time.perf_counter()
    memory_readout(via, memory, 0.01)
    seconds = time.perf_counter() - t0
    peak = _status_bytes("VmHWM")
    print(json.dumps({
        "n_via": n_via, "n_mem": n_mem, "dim": d, "threads": n_threads, "seconds": seconds,
        "rss_before_bytes": before, "peak_rss_before_bytes": hwm_before, "peak_rss_bytes": peak,
        "readout_extra_bytes": peak - before, "ru_maxrss_before_bytes": maxrss_before, "ru_maxrss_bytes": _max_rss_bytes(),
        "inputs_bytes": (n_via + n_mem) * d * 4,
        "full_matrix_bytes": n_via * n_mem * 4,
    }))


if __name__ == "__main__":
    main(*map(int, sys.argv[1:5]))
