"""The large C-MCR run: ``cmcr.train`` on N via pairs (1M in the full run) against 100k-item
memories, in a fresh process, timed in parts like the 100k run, with the process's peak RSS.
Run as ``python -m benchmarks.large N_VIA N_MEM DIM THREADS CONFIG_JSON``; prints one JSON line.

A fresh process, so that nothing else the benchmark run holds counts towards the peak. Two
peak figures are read: ``getrusage().ru_maxrss`` and ``VmHWM`` of /proc/self/status. On Linux
ru_maxrss survives execve, so in a child of a big process it starts at the parent's RSS at fork
time; VmHWM belongs to the new process image only, so the report uses VmHWM."""
from __future__ import annotations

import json
import resource
import subprocess
import sys


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise KeyError(key)


def measure(n_via: int, n_mem: int, d: int, n_threads: int, cfg_json: str) -> dict:
    """Run the large run in a subprocess (its log lines go to our stderr) and return its result."""
    cmd = [sys.executable, "-m", "benchmarks.large", str(n_via), str(n_mem), str(d), str(n_threads), cfg_json]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n_via: int, n_mem: int, d: int, n_threads: int, cfg_json: str) -> None:
    import torch

    from mcrgraph.methods import cmcr

    from .training import make_data, run_cmcr

    cfg = cmcr.Config.model_validate_json(cfg_json)
    torch.set_num_threads(n_threads)
    data = make_data(n_via, n_mem, d)
    before, hwm_before, maxrss_before = _status_bytes("VmRSS"), _status_bytes("VmHWM"), _max_rss_bytes()
    print(f"[benchmarks.large] cmcr.train on {n_via:,} pairs x {n_mem:,} memories ...", file=sys.stderr, flush=True)
    run = run_cmcr(data, cfg, caller_threads=n_threads)
    peak = _status_bytes("VmHWM")
    inputs = sum(t.numel() * t.element_size() for t in (data.via_a, data.via_b, data.memory_a, data.memory_b))
    print(json.dumps({
        **run, "n_via": n_via, "n_mem": n_mem, "dim": d, "threads": n_threads,
        "rss_before_bytes": before, "peak_rss_before_bytes": hwm_before, "peak_rss_bytes": peak,
        "train_extra_bytes": peak - before, "ru_maxrss_before_bytes": maxrss_before, "ru_maxrss_bytes": _max_rss_bytes(),
        "inputs_bytes": inputs, "readouts_bytes": 2 * n_via * d * 4,
        "full_matrix_bytes": n_via * n_mem * 4,
    }))


if __name__ == "__main__":
    main(*map(int, sys.argv[1:5]), sys.argv[5])
