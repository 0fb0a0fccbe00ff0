"""LAION-CLAP checkpoint keys <-> transformers' ``ClapModel`` keys (HTSAT audio tower, RoBERTa
text tower). The renames are the ones transformers' own conversion script applied to make
``laion/clap-htsat-*``; written here because transformers 5 no longer ships that script.

laion_clap holds a few tensors ClapModel has no place for and that no embedding uses: the
waveform -> log-mel front end (used only with fusion off), the AudioSet classification head, the
``*_transform`` MLPs of its training loss, and the shifted-window attention masks (buffers
ClapModel computes on the fly). They are dropped: ``LAION_ONLY`` and ``LAION_ONLY_SUFFIX``."""
from __future__ import annotations

import re

import torch

LAION_ONLY = ("audio_branch.spectrogram_extractor.", "audio_branch.logmel_extractor.", "audio_branch.tscam_conv.",
              "audio_branch.head.", "text_transform.", "audio_transform.")
RENAMES = [
    (r"^text_branch\.", "text_model."),
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.relative_position_", ".attention.self.relative_position_"),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    (r"^(text|audio)_projection\.0\.", r"\1_projection.linear1."),
    (r"^(text|audio)_projection\.2\.", r"\1_projection.linear2."),
]
LAION_ONLY_SUFFIX = (".attn_mask",)
QKV = re.compile(r"\.attn\.qkv\.(weight|bias)$")


def laion_only(key: str) -> bool:
    return key.startswith(LAION_ONLY) or key.endswith(LAION_ONLY_SUFFIX)


def hf_keys(key: str) -> list[str]:
    """The ClapModel keys a laion_clap key becomes: none (``LAION_ONLY``), one, or three (a
    fused ``qkv`` split into query, key, value)."""
    if laion_only(key):
        return []
    qkv = QKV.search(key)
    if qkv:
        key = key[: qkv.start()] + ".attn.QKV." + qkv.group(1)
    for pattern, new in RENAMES:
        key = re.sub(pattern, new, key)
    if qkv:
        return [key.replace(".attn.QKV.", f".attention.self.{part}.") for part in ("query", "key", "value")]
    return [key]


def laion_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        names = hf_keys(key)
        for name, part in zip(names, value.chunk(len(names), dim=0) if len(names) > 1 else [value]):
            out[name] = part.contiguous()
    return out


def hf_to_laion(state: dict[str, torch.Tensor], laion_keys) -> dict[str, torch.Tensor]:
    """The laion_clap state dict with keys ``laion_keys`` from a ClapModel's; the keys only
    laion_clap has are left out (the caller keeps its own)."""
    out = {}
    for key in laion_keys:
        names = hf_keys(key)
        if names:
            out[key] = torch.cat([state[n] for n in names], dim=0) if len(names) > 1 else state[names[0]]
    return out
