"""Mixed-precision training (--precision) and device handling, on the CPU: steps run under
autocast, while weights, optimizer state and the stored heads stay float32."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from conftest import CAPTIONS

import mcrgraph
from mcrgraph.cli import cli

CFG = {"epochs": 4, "batch_size": 16, "seed": 0}
MEMORIES = {"image": [f"k{i}#m" for i in range(20)], "audio": [f"k{i}#n" for i in range(20)]}


def connect(method, **kw):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=MEMORIES, method=method,
                            config={**CFG, **kw}, save=False)


@pytest.mark.parametrize("method", ["c-mcr", "ex-mcr"])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_float32_heads(fakes, method, precision):
    full = connect(method)
    mixed = connect(method, precision=precision)
    assert mixed.card.config["precision"] == precision
    for name, tensor in mixed._tensors.items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float32, name
    emb = mixed.encode("audio", ["k1#0", "k2#0"])
    assert emb.dtype == torch.float32 and torch.isfinite(emb).all()
    # the steps really ran at reduced precision: the weights differ from the fp32 run's ...
    assert any(not torch.equal(mixed._tensors[k], full._tensors[k]) for k in full._tensors)
    # ... but the result is about as good
    assert abs(mixed.card.metrics["val_r1"] - full.card.metrics["val_r1"]) <= 0.2


def test_fp32_is_unchanged_and_deterministic(fakes):
    a, b = connect("c-mcr"), connect("c-mcr", precision="fp32")
    assert all(torch.equal(a._tensors[k], b._tensors[k]) for k in a._tensors)


def test_devices_are_checked(fakes):
    if not torch.cuda.is_available():
        with pytest.raises(mcrgraph.ConfigError, match="no CUDA device"):
            connect("c-mcr", device="cuda")
    with pytest.raises(mcrgraph.ConfigError, match="not a torch device"):
        connect("c-mcr", device="gpu0")
    with pytest.raises(mcrgraph.ConfigError, match="precision"):
        connect("c-mcr", precision="fp8")


def test_cli_precision_flag(fakes, tmp_path):
    items = tmp_path / "captions.txt"
    items.write_text("\n".join(CAPTIONS))
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--items", str(items), "--precision", "bf16",
                                 "--epochs", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert mcrgraph.get_mcr("fa+fb").card.config["precision"] == "bf16"
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--items", str(items), "--precision", "fp8"])
    assert r.exit_code == 2 and "fp8" in r.output
