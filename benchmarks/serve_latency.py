"""Query latency of ``mcrgraph serve``: p50 and p99 of ``POST /search`` over real HTTP (a
``mcrgraph serve`` subprocess on 127.0.0.1, httpx as the client) beside the same search called
in Python (``Shelf.search``, warmed, in this process), in the same run: the mini world's
galleries and a 100,000-item gallery, text queries and uploaded sounds.

    python -m benchmarks.serve_latency            # writes results/serve-latency.{json,md}
    python -m benchmarks.serve_latency --requests 30 --big 20000 --out ''   # quick look

The 100k gallery holds the mini world's held-out image ids repeated (so each result still
shows a picture), with mini-clip rows made from the real held-out rows plus a little noise and
renormalised (no 100k encodes); its rows in the connected space are built by the server on
the first audio query (timed apart, not in the percentiles). Every request is a fresh query
item (20 captions, 20 sounds, cycled): text and sounds are encoded per request, as a user's
would be (uploads are never cached)."""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import measured, report

RESULTS = os.path.join(os.path.dirname(__file__), "results")
CAPTIONS = ["a dog", "the digit seven", "a handwritten three", "a red apple", "someone saying nine", "a cat", "a bell",
            "the letter k", "a cube", "a rocket", "a printed digit 4", "an alarm clock", "a pear", "a tulip", "a kite",
            "the number twelve", "a phone ringing", "a heart", "a star", "a tiger"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def sounds(n: int) -> list[bytes]:
    """WAV files of held-out mini-world sounds (re-synthesised from their log-mels)."""
    import soundfile
    from mcrgraph_mini.media import item_media
    from mcrgraph_mini.world import bundled

    ids = bundled().ids("heldout", "audio")
    out = []
    for i in range(n):
        wave, sr = item_media("audio", ids[(i * 37) % len(ids)])
        buf = io.BytesIO()
        soundfile.write(buf, wave, sr, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    return out


def big_gallery(name: str, n: int, seed: int = 0) -> None:
    """A stored gallery of ``n`` held-out image ids with mini-clip rows written directly."""
    import torch
    import torch.nn.functional as F
    from mcrgraph_mini.world import bundled

    import mcrgraph
    from mcrgraph.spaces.encoding import embed
    from mcrgraph.store import galleries as store

    world = bundled()
    ids = world.ids("heldout", "image")
    items = [ids[i % len(ids)] for i in range(n)]
    labels = [world.concepts[world.label(i)].name for i in items]
    clip = mcrgraph.get_mcr("mini-clip")
    base = embed(clip, "image", ids)
    gen = torch.Generator().manual_seed(seed)
    rows = F.normalize(base[torch.arange(n) % len(ids)] + 0.05 * torch.randn(n, base.shape[1], generator=gen), dim=1)
    card = store.GalleryCard(name=name, modality="image@mini-clip", plugin="mini", items=items, labels=labels,
                             about=f"{n:,} held-out image ids, repeated (benchmark)",
                             source_fingerprint=store.source_fingerprint("image@mini-clip", items, labels))
    if store.exists(name):
        store.remove(name)
    store.write_card(card)
    store.write_rows(card, "mini-clip", "image", clip.fingerprint(), rows)


def ensure_connected() -> str:
    import mcrgraph
    from mcrgraph.errors import NoPathError

    try:
        return mcrgraph.graph().plan("audio", "image@mini-clip").node
    except NoPathError:
        return mcrgraph.connect("mini-clip", "mini-clap", via="text").name


def serve(port_file: Path) -> subprocess.Popen:
    code = ("import socket,sys,uvicorn\nfrom mcrgraph.serve import create_app\n"
            "s=socket.socket();s.bind(('127.0.0.1',0));open(sys.argv[1],'w').write(str(s.getsockname()[1]))\n"
            "uvicorn.Server(uvicorn.Config(create_app(),log_level='warning',lifespan='off')).run(sockets=[s])\n")
    return subprocess.Popen([sys.executable, "-c", code, str(port_file)], env=os.environ.copy())


def run(requests: int, big: int) -> dict:
    import httpx

    from mcrgraph.planning.graph import graph
    from mcrgraph.tasks.galleries import Shelf

    t0 = time.perf_counter()
    node = ensure_connected()
    setup = {"connect_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    big_name = f"bench-{big // 1000}k"
    big_gallery(big_name, big)
    setup["big_gallery_write_s"] = time.perf_counter() - t0
    waves = sounds(20)
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    wav_files = []
    for i, w in enumerate(waves):
        (tmp / f"q{i}.wav").write_bytes(w)
        wav_files.append(str(tmp / f"q{i}.wav"))
    cases = [("mini-images", "text"), ("mini-images", "audio"), ("mini-sounds", "text"), (big_name, "text"), (big_name, "audio")]
    shelf, g = Shelf(), graph()
    # the first query of each case builds that gallery's rows in its space (the 100k gallery's
    # connected-space rows: 100k encodes), so every case is warmed once before it is timed
    firsts = {}
    for gallery, kind in cases:
        t = time.perf_counter()
        shelf.search(kind, CAPTIONS[0] if kind == "text" else wav_files[0], gallery, 12, graph=g)
        firsts[f"{gallery} {kind}"] = time.perf_counter() - t
    port_file = tmp / "port"
    proc = serve(port_file)
    rows = []
    try:
        deadline = time.time() + 120
        while not (port_file.exists() and port_file.read_text()) and time.time() < deadline:
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        with httpx.Client(base_url=url, timeout=600) as client:
            while time.time() < deadline:
                try:
                    if client.get("/galleries").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            for gallery, kind in cases:
                def api(i):
                    if kind == "text":
                        r = client.post("/search", data={"gallery": gallery, "text": CAPTIONS[i % 20], "k": "12"})
                    else:
                        r = client.post("/search", data={"gallery": gallery, "k": "12"}, files={"file": ("q.wav", waves[i % 20])})
                    r.raise_for_status()
                    return r.json()

                def python(i):
                    q = CAPTIONS[i % 20] if kind == "text" else wav_files[i % 20]
                    return shelf.search(kind, q, gallery, 12, graph=g)

                t = time.perf_counter()
                first = api(0)  # warms the server: its rows and index for this case
                api_first = time.perf_counter() - t
                api_s, py_s = [], []
                for i in range(requests):  # alternate, so load on the machine falls on both alike
                    t = time.perf_counter()
                    answer = api(i)
                    api_s.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    found = python(i)
                    py_s.append(time.perf_counter() - t)
                    assert [x["index"] for x in answer["results"]] == [h.index for h in found.hits], "API and Python disagree"
                rows.append({"gallery": gallery, "items": first["gallery"]["items"], "query": kind, "path": first["path"]["text"],
                             "requests": requests, "api_first_s": api_first, "python_first_s": firsts[f"{gallery} {kind}"],
                             "api_p50_ms": 1e3 * pct(api_s, 50), "api_p99_ms": 1e3 * pct(api_s, 99),
                             "python_p50_ms": 1e3 * pct(py_s, 50), "python_p99_ms": 1e3 * pct(py_s, 99),
                             "ratio_p50": pct(api_s, 50) / pct(py_s, 50), "api_mean_ms": 1e3 * statistics.fmean(api_s)})
    finally:
        proc.terminate()
        proc.wait(30)
    return {"requests": requests, "big": big, "node": node, "setup": setup, "rows": rows}


def markdown(r: dict) -> str:
    lines = ["| gallery | items | query | API p50 | API p99 | Python p50 | Python p99 | API / Python (p50) | first query (API; Python) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['gallery']} | {x['items']:,} | {x['query']} | {x['api_p50_ms']:.1f} ms | {x['api_p99_ms']:.1f} ms | "
                     f"{x['python_p50_ms']:.1f} ms | {x['python_p99_ms']:.1f} ms | {x['ratio_p50']:.2f} | "
                     f"{x['api_first_s']:.2f} s; {x['python_first_s']:.2f} s |")
    paths = sorted({(x["query"], x["gallery"].split("-")[0], x["path"]) for x in r["rows"]})
    lines += ["", "Paths: " + "; ".join(f"{q} -> {p}" for q, _, p in paths) + ".",
              f"\n{r['requests']} requests per row, each a new query item (20 captions or 20 sounds, cycled), top 12; API and "
              "Python calls alternate and every API answer was checked to list the same items as the Python call. "
              f"Set-up: connect {r['setup']['connect_s']:.0f} s (0 when stored), the {r['big']:,}-item gallery written in "
              f"{r['setup']['big_gallery_write_s']:.1f} s.\n"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.serve_latency", description="mcrgraph serve query latency")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--big", type=int, default=100_000, help="items in the large gallery")
    ap.add_argument("--home", default="", help="MCRGRAPH_HOME to use (default: a new temp folder, so the connect is timed too)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "serve-latency"), help="path stem of the .json and .md written; '' prints only")
    args = ap.parse_args(argv)
    os.environ["MCRGRAPH_HOME"] = args.home or tempfile.mkdtemp(prefix="mcrgraph-serve-bench-")
    r = measured(lambda: run(args.requests, args.big))
    info, wall = r["machine"], r["runtime_s"]
    head = (f"# mcrgraph serve: query latency (`python -m benchmarks.serve_latency`)\n\n{info['cpu_model']}, {info['cores']} cores, "
            f"torch {info['torch']}, python {info['python']}, {info['date']}; {wall:.0f} s. Load: `uptime` before: "
            f"{r['uptime_before']}; after: {r['uptime_after']}. This run (with its server subprocess) kept {r['own_cores']:.2f} "
            f"cores busy on average, other processes {r['other_cores_busy']:.2f} (from /proc/stat).\n\n")
    report(r, head + markdown(r), args.out)


if __name__ == "__main__":
    main()
