"""Connects run from the page: the cheapest chain of connects (planner.chain) that would join
two modalities, trained one step after another in a background thread on the plugins'
default items, with each step and each progress bar (epochs) reported to whoever asks. One
job at a time: training takes the machine."""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError, DataError, MCRGraphError, NoPathError
from ..io.progress import observe


@dataclass
class Job:
    id: str
    a: str
    b: str
    steps: list[dict]
    state: str = "running"  # running, done, failed
    step: int = 0  # the step being trained (0-based)
    bar: dict = field(default_factory=dict)  # the current progress bar: desc, done, total
    error: str | None = None
    path: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def view(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round((self.finished or time.time()) - self.started, 1)
        return out


class Jobs:
    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise DataError(f"no job {job_id!r}")
        return job

    def start(self, a: str, b: str, options: dict[str, Any] | None = None) -> Job:
        """Start joining ``a`` and ``b``; ConfigError while another job runs, DataError (before
        anything is trained) when a step has no default items or nothing links them."""
        from ..planning.graph import graph
        from ..planning.planner import chain

        g = graph()
        try:
            path = g.plan(a, b)
        except NoPathError as e:
            if not e.steps:
                raise  # nothing links them: the planner's own one-line error
        else:
            raise ConfigError(f"{a} and {b} meet already ({path.describe()}): nothing to connect")
        steps = chain(g.nx, a, b)
        lacking = [s for s in steps if not s.defaults]
        if lacking:
            s = lacking[0]
            raise DataError(f"cannot join {a} and {b} from the page: step {steps.index(s) + 1} of {len(steps)} ({s.command()}) "
                            f"needs your own items of {s.via}; run the chain on the command line")
        with self._lock:
            if any(j.state == "running" for j in self._jobs.values()):
                raise ConfigError("a connect is running already; wait for it to finish")
            job = Job(str(next(self._ids)), a, b, [{"a": s.a, "b": s.b, "via": s.via, "command": s.command()} for s in steps])
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, g, dict(options or {})), daemon=True, name=f"connect-{job.id}").start()
        return job

    def _run(self, job: Job, g, options: dict[str, Any]) -> None:
        from ..planning.graph import join

        def on_step(i, n, step):
            job.step, job.bar = i, {}

        def on_bar(desc, done, total):
            job.bar = {"desc": desc, "done": done, "total": total}

        try:
            with observe(on_bar):
                path = join(g.nx, job.a, job.b, on_step=on_step, **options)
            job.path, job.state = path.describe(), "done"
        except MCRGraphError as e:
            job.error, job.state = str(e), "failed"
        except Exception as e:  # noqa: BLE001 - reported to the page, the server keeps serving
            job.error, job.state = f"internal error: {type(e).__name__}: {e}", "failed"
        finally:
            job.finished = time.time()
