"""How much a connected space keeps of its parents' own retrieval (docs/architecture.md,
Fidelity), as the plugins measure it on their held-out data (the ``evaluate_space`` hook's
retention tables). Measured once per space fingerprint, kept in $MCRGRAPH_HOME/serve."""
from __future__ import annotations

import json
import math
import threading

from ..errors import MCRGraphError
from ..store.disk import atomic_write_bytes, home

_lock = threading.Lock()


def _file(fingerprint: str):
    return home() / "serve" / "retention" / f"{fingerprint[:40]}.json"


def retention(space) -> dict:
    """``{"space", "kind", "tables": {title: {group: {"retention", ...}}}, "summary": [{"title",
    "retention"}]}``; for a plugin's own space nothing is lost, so there is nothing to measure."""
    from ..spaces.connected import ConnectedMCR

    if not isinstance(space, ConnectedMCR):
        return {"space": space.name, "kind": "plugin", "tables": {}, "summary": [],
                "note": "a plugin's own space: its retrieval is its own, nothing is lost"}
    fp = space.fingerprint()
    with _lock:  # one measurement at a time: each takes the machine for seconds
        try:
            return json.loads(_file(fp).read_text())
        except (OSError, ValueError):
            pass
        from ..spaces.plugins import hook

        tables = {}
        for found in hook().evaluate_space(space=space):
            tables.update({title: t for title, t in (found or {}).items() if "retention" in title})
        summary = []
        for title, groups in tables.items():
            values = [g["retention"] for g in groups.values() if isinstance(g.get("retention"), float) and math.isfinite(g["retention"])]
            if values:
                summary.append({"title": title.split(":")[0].replace("held-out ", "").replace(" retention", ""), "retention": sum(values) / len(values), "groups": len(values)})
        out = {"space": space.name, "kind": "connector", "tables": _finite(tables), "summary": summary,
               "note": "" if tables else "no installed plugin measures this space's retention"}
        try:
            atomic_write_bytes(_file(fp), json.dumps(out).encode())
        except MCRGraphError:
            pass  # a read-only home: measured again next time
        return out


def _finite(x):
    """NaN (a group whose parent scores 0) as null, so the answer is valid JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
