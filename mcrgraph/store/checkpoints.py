"""Training checkpoints, so a killed ``connect`` can ``--resume`` to the same final weights.

One folder per connector name under ``$MCRGRAPH_HOME/checkpoints``: ``state.safetensors``
(tensors: weights, optimizer moments, RNG state) and ``state.json`` (epoch, job fingerprint,
everything else), replaced atomically after each epoch and removed when the connector is stored."""
from __future__ import annotations

import json
import logging
import shutil
from typing import Any

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import ConfigError, StoreError
from .disk import atomic_dir, home, recover, set_aside

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves and restores a training job identified by ``job`` (a fingerprint of the data, the
    encoders and the config): a checkpoint of another job is never resumed."""

    def __init__(self, name: str, job: str, resume: bool = False, every: int = 1):
        self.name = name
        self.folder = home() / "checkpoints" / name
        self.job, self.resume, self.every = job, resume, max(1, every)
        self._lock = None

    def __enter__(self):
        """Hold an exclusive lock on this name while training: two runs of one name would
        overwrite each other's checkpoints. filelock (not fcntl) so the package imports and locks on
        every OS; the OS drops the lock if the process dies."""
        lock = self.folder.parent / f".{self.name}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            held = FileLock(lock, timeout=0)
            held.acquire()
        except Timeout:
            raise StoreError(f"another process is training a connector named {self.name!r} right now; wait for it or choose another --name") from None
        except OSError as e:
            raise StoreError(f"cannot create {lock}: {e.strerror}; set MCRGRAPH_HOME to a writable folder") from e
        self._lock = held
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The saved state when resuming; None when starting fresh."""
        if not self.resume:
            if self.folder.exists():
                log.warning("discarding the checkpoint of an interrupted run in %s (pass --resume to continue it)", self.folder)
            return None
        # killed in the instant a checkpoint replaced the one before: that one is still set aside
        recover(self.folder)
        folder = self.folder if self.folder.exists() else (set_aside(self.folder) or self.folder)
        try:
            meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            tensors = st_load((folder / "state.safetensors").read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"nothing to resume: no checkpoint in {self.folder}; run without --resume") from None
        except (OSError, ValueError, SafetensorError) as e:
            raise ConfigError(f"the checkpoint in {self.folder} is unreadable ({e}); run without --resume to start over") from None
        if meta.get("job") != self.job:
            raise ConfigError(
                f"the checkpoint in {self.folder} is of another job (other items, encoders or options); "
                f"run with the same arguments to resume, or without --resume to start over"
            )
        return tensors, meta

    def due(self, epoch: int, last: int) -> bool:
        return (epoch + 1) % self.every == 0 and epoch + 1 < last

    def save(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        data = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        with atomic_dir(self.folder, overwrite=True) as tmp:
            (tmp / "state.safetensors").write_bytes(data)
            (tmp / "state.json").write_text(json.dumps({**meta, "job": self.job}), encoding="utf-8")

    def clear(self) -> None:
        while (aside := set_aside(self.folder)) is not None:  # left by a run killed mid-replacement
            shutil.rmtree(aside.parent, ignore_errors=True)
            if aside.exists():
                break
        try:
            shutil.rmtree(self.folder)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"cannot remove checkpoint {self.folder}: {e.strerror}") from e


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as safetensors-friendly tensors plus JSON-able groups."""
    state = opt.state_dict()
    tensors = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"opt.{idx}.{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    module.load_state_dict({k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
