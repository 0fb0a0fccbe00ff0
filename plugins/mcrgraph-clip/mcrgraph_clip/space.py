"""The ``clip`` space: any open_clip model with a pretrained tag, a local checkpoint, or a
seeded random init (tests and benchmarks)."""
from __future__ import annotations

import copy
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from mcrgraph.plugin import (
    Download, EncoderError, PretrainedMCR, check_texts, env_overrides, hub_cached, load_exact,
    missing_weights, pil_image, prefetched, seeded, strip_prefix,
)

ENV_MODEL, ENV_PRETRAINED = "MCRGRAPH_CLIP_MODEL", "MCRGRAPH_CLIP_PRETRAINED"
SAFE_WEIGHTS = "open_clip_model.safetensors"  # what open_clip asks the hub for first (then open_clip_pytorch_model.bin)
# Pinned hub files: (repo, file) -> (commit, sha256, size). The openai ViT-B/32 weights as timm
# publishes them for open_clip: the snapshot and digest several projects record for
# models--timm--vit_base_patch32_clip_224.openai/snapshots/a6f597a3.../open_clip_model.safetensors
# (605,143,284 bytes, sha256 e6d1bd77...); tests/test_online.py checks them against the hub.
PINS = {("timm/vit_base_patch32_clip_224.openai", SAFE_WEIGHTS):
        ("a6f597a30f7b82c51704746581f9a4e41421e878", "e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31", 605_143_284)}
LICENCE = "OpenAI CLIP weights (MIT, github.com/openai/CLIP); hub copy by timm, marked Apache-2.0"


class ClipConfig(BaseModel):
    """One open_clip model as an mcrgraph space."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("clip", description="the space's name in mcrgraph")
    model: str = Field("ViT-B-32", description="an open_clip architecture (open_clip.list_models())")
    pretrained: str | None = Field("openai", description="an open_clip pretrained tag, or a local checkpoint file; None: seeded random init")
    architecture: dict[str, Any] | None = Field(None, description="an open_clip model config (embed_dim, vision_cfg, text_cfg) for an architecture open_clip does not list; needs pretrained=None or a local file")
    seed: int = Field(0, description="seeds the random init when pretrained is None")
    device: str = "cpu"
    batch_size: int = Field(32, ge=1, description="items per forward pass")
    workers: int = Field(4, ge=1, description="threads that decode and preprocess images")
    cache_dir: str | None = Field(None, description="where open_clip keeps downloads (default: its own)")

    @classmethod
    def from_env(cls, **overrides) -> "ClipConfig":
        """Defaults, with ``MCRGRAPH_CLIP_MODEL`` and ``MCRGRAPH_CLIP_PRETRAINED`` (a tag, a
        file, or ``none`` for random init) applied."""
        return cls(**{**env_overrides(model=ENV_MODEL, pretrained=ENV_PRETRAINED), **overrides})

    def local_file(self) -> Path | None:
        p = self.pretrained
        if p and (os.sep in p or Path(p).suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt"} or Path(p).expanduser().exists()):
            return Path(p).expanduser()
        return None


class ClipMCR(PretrainedMCR):
    modalities = ("image", "text")
    family = "open_clip"

    def __init__(self, config: ClipConfig | None = None):
        super().__init__(config or ClipConfig())
        # the library hands over this many items per call; forward passes take config.batch_size
        # each, the next one decoded meanwhile
        self.batch_size = 8 * self.config.batch_size
        self.dim = int((self.config.architecture or {}).get("embed_dim") or _known_dim(self.config.model))

    @property
    def released(self):
        return () if self.config.local_file() else (self.config.pretrained,)  # a tag names published weights

    def weights_present(self) -> bool | None:
        cfg = self.config
        if cfg.pretrained is None:
            return None
        local = cfg.local_file()
        if local is not None:
            return local.is_file()
        return _cached_tag_file(cfg) is not None

    def downloads(self) -> list[Download]:
        """The weights file open_clip would fetch for this model and tag, into the cache it
        (and ``weights_present``) reads; none for random init or a local file."""
        cfg = self.config
        if cfg.pretrained is None or cfg.local_file() is not None or cfg.architecture is not None:
            return []
        import open_clip

        pcfg = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained)
        what = f"CLIP {cfg.model} ({cfg.pretrained}) weights"
        hint = f"or set {ENV_PRETRAINED}=/path/to/open_clip_pytorch_model.bin"
        if pcfg.get("hf_hub"):
            repo, filename = os.path.split(pcfg["hf_hub"])
            revision, sha256, size = PINS.get((repo, filename or SAFE_WEIGHTS), (None, None, None))
            return [Download(what, repo_id=repo, filename=filename or SAFE_WEIGHTS, cache_dir=cfg.cache_dir, revision=revision,
                             sha256=sha256, size=size, unpinned="" if sha256 else "mcrgraph pins the openai ViT-B/32 weights only",
                             licence=LICENCE, hint=hint)]
        if pcfg.get("url"):
            url = pcfg["url"]
            folder = Path(cfg.cache_dir or Path.home() / ".cache" / "clip")
            digest = url.split("/")[-2] if "openaipublic" in url and len(url.split("/")[-2]) == 64 else None  # OpenAI's URLs carry the sha256
            if digest:  # an address with no digest is not fetched unchecked: open_clip fetches it when the model is built
                return [Download(what, url=url, dest=folder / os.path.basename(url), sha256=digest, licence=LICENCE, hint=hint)]
        return []

    def weights_hint(self) -> str | None:
        cfg = self.config
        # a file does not say its activation: a local copy of QuickGELU weights needs the -quickgelu model
        quick = cfg.local_file() is None and not cfg.model.endswith("-quickgelu") and tag_activation(cfg.model, cfg.pretrained)
        model = f" and {ENV_MODEL}={cfg.model}-quickgelu (the activation those weights were trained with)" if quick else ""
        return (f"run `mcrgraph download {self.name}` where you are online ({cfg.model} / {cfg.pretrained!r}), "
                f"or set {ENV_PRETRAINED}=/path/to/open_clip_pytorch_model.bin{model}")

    def architecture(self) -> str:
        # a tag builds the activation it was trained with (tag_activation): before issue 28 the
        # default ViT-B-32 + openai ran GELU, so caches made then must not match
        tagged = "|activation-of-tag" if self.config.pretrained is not None and self.config.local_file() is None else ""
        return f"{self.config.model}|{json.dumps(self.config.architecture, sort_keys=True)}{tagged}"

    def weights_source(self):
        return self.config.pretrained, self.config.seed

    def build(self):
        """(model, preprocess, tokenizer)."""
        parts = _build(self.config)
        proj = getattr(parts[0], "text_projection", None)
        if proj is not None and hasattr(proj, "shape") and proj.shape[-1] != self.dim:
            self.dim = int(proj.shape[-1])
        return parts

    # -- encoding -----------------------------------------------------------------
    def encode(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        model, preprocess, tokenizer = self.parts()
        device = self.config.device
        with torch.inference_mode():
            if modality == "text":
                out = model.encode_text(tokenizer(check_texts(self.name, items)).to(device))
            else:
                decoded = prefetched(lambda x: preprocess(pil_image(x)), items, self.config.batch_size, self.config.workers)
                out = torch.cat([model.encode_image(torch.stack(pixels).to(device)) for pixels in decoded])
            return F.normalize(out.float(), dim=-1).cpu()

    def dense_modalities(self) -> tuple[str, ...]:
        """Images, for ViT towers: one embedding per patch (7 x 7 for ViT-B-32 at 224 px)."""
        vision = (self.config.architecture or {}).get("vision_cfg", {})
        vit = "timm_model_name" not in vision if self.config.architecture else self.config.model.startswith("ViT")
        return ("image",) if vit else ()

    def encode_dense(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        """(n, gh, gw, dim) patch embeddings, each L2-normalised, in the same space as the
        pooled image embedding (the patch tokens after the final LayerNorm, through ``proj``)."""
        model, preprocess, _ = self.parts()
        if modality != "image":
            raise NotImplementedError(f"{self.name} has dense features for images only")
        with torch.inference_mode():
            pixels = torch.stack([preprocess(pil_image(x)) for x in items]).to(self.config.device)
            dense = _dense_tokens(model.visual, pixels)
            if dense is None:
                raise NotImplementedError(f"{self.name}: the {self.config.model} image tower has no patch tokens to use")
            return F.normalize(dense.float(), dim=-1).cpu()


def _dense_tokens(visual, pixels: torch.Tensor) -> torch.Tensor | None:
    """(n, gh, gw, dim) projected patch tokens of an open_clip VisionTransformer, or None for
    other towers. Through open_clip's public ``output_tokens`` route: the tower returns
    ``(pooled, tokens)`` (the patch tokens after the final LayerNorm), and the tokens go through
    ``proj`` like the pooled token. The flag is set on a shallow copy (parameters shared), so a
    concurrent ``encode_image`` on the real tower still gets the pooled embedding alone."""
    if not all(hasattr(visual, a) for a in ("output_tokens", "proj", "grid_size")):
        return None
    if getattr(visual, "attn_pool", None) is not None or visual.proj is None:
        return None
    tower = copy.copy(visual)
    tower.output_tokens = True
    _, tokens = tower(pixels)
    gh, gw = visual.grid_size
    if tokens.shape[1] != gh * gw:
        return None
    return (tokens @ visual.proj).reshape(len(pixels), gh, gw, -1)


def _known_dim(model: str) -> int:
    """The embed dim from open_clip's bundled config file, read without importing open_clip
    (3 s), so that listing plugins stays quick."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model_configs" / f"{model}.json"
        if path.is_file():
            return int(json.loads(path.read_text())["embed_dim"])
    return 512  # unknown here; corrected from the model when it is built


def _pinned_file(cfg: ClipConfig) -> str | None:
    """The tag's weights from the pinned snapshot in the hub cache (what `mcrgraph download clip`
    fetched), or None; open_clip itself only looks where ``main`` points."""
    import open_clip

    hub = (open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained) or {}).get("hf_hub")
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    pin = PINS.get((repo, filename or SAFE_WEIGHTS))
    return hub_cached(repo, filename or SAFE_WEIGHTS, cfg.cache_dir, revision=pin[0]) if pin else None


def _cached_tag_file(cfg: ClipConfig) -> str | None:
    import open_clip

    pcfg = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained)
    if not pcfg:
        return None
    if pcfg.get("hf_hub"):
        repo, filename = os.path.split(pcfg["hf_hub"])
        pinned = _pinned_file(cfg)
        if pinned:
            return pinned
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            for alt in (name.replace(".bin", ".safetensors"), name):
                found = hub_cached(repo, alt, cfg.cache_dir)
                if found:
                    return found
    if pcfg.get("url"):
        path = Path(cfg.cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(pcfg["url"])
        if path.is_file():
            return str(path)
    return None


def _build(cfg: ClipConfig):
    try:
        import open_clip
    except ImportError as e:
        raise EncoderError(f"{cfg.name}: open_clip is not installed ({e}); pip install open_clip_torch") from None
    where = f"{cfg.name} ({cfg.model}, {cfg.pretrained or 'random init'})"
    local = cfg.local_file()
    if cfg.architecture is not None:
        if cfg.pretrained is not None and local is None:
            raise EncoderError(f"{where}: a custom architecture takes a local checkpoint or pretrained=None, not a tag")
        with seeded(cfg.seed):
            model = open_clip.CLIP(**cfg.architecture)
        size = model.visual.image_size
        preprocess = open_clip.image_transform(size, is_train=False)
        tokenizer = open_clip.SimpleTokenizer(context_length=model.context_length)
    else:
        if cfg.model not in open_clip.list_models():
            close = [m for m in open_clip.list_models() if cfg.model.lower() in m.lower()][:5]
            raise EncoderError(f"{cfg.name}: open_clip has no model {cfg.model!r}" + (f"; did you mean {', '.join(close)}?" if close else "; see open_clip.list_models()"))
        tag = None if (cfg.pretrained is None or local is not None) else cfg.pretrained
        if tag is not None and tag not in open_clip.list_pretrained_tags_by_model(cfg.model):
            tags = open_clip.list_pretrained_tags_by_model(cfg.model)
            raise EncoderError(f"{cfg.name}: {cfg.model} has no pretrained tag {tag!r}; it has: {', '.join(tags) or 'none'} (or give a checkpoint file)")
        quick = tag_activation(cfg.model, tag)
        try:
            with seeded(cfg.seed), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "QuickGELU mismatch")  # open_clip only warns; checked below, loudly
                # the pinned file when it is here (the same weights as the tag, by its digest), else the tag
                source = (_pinned_file(cfg) if tag is not None else None) or tag
                model, _, preprocess = open_clip.create_model_and_transforms(cfg.model, pretrained=source, device="cpu", cache_dir=cfg.cache_dir,
                                                                             force_quick_gelu=bool(quick))
        except Exception as e:  # hub and network errors come in many types
            if tag is not None and _cached_tag_file(cfg) is None:
                raise missing_weights(where, ENV_PRETRAINED, "/path/to/open_clip_pytorch_model.bin", e) from None
            raise EncoderError(f"{where}: open_clip failed to build it: {type(e).__name__}: {e}") from None
        if quick is not None and uses_quick_gelu(model) != quick:
            def name(q):
                return "QuickGELU" if q else "GELU"
            raise EncoderError(f"{where}: the {tag!r} weights were trained with {name(quick)}, but open_clip built {cfg.model} with "
                               f"{name(not quick)}; the embeddings would be wrong. Choose the model the tag was trained with")
        tokenizer = open_clip.get_tokenizer(cfg.model)
    if local is not None:
        _load_local(model, local, where)
    model.eval().to(cfg.device)
    return model, preprocess, tokenizer


def tag_activation(model: str, tag: str | None) -> bool | None:
    """Whether pretrained ``tag``'s weights were trained with QuickGELU, as open_clip's table of
    tags says (``quick_gelu``; OpenAI's CLIP was). open_clip >= 2.29 builds ``ViT-B-32`` with
    GELU and only warns when a tag differs, so the plugin builds the activation the tag was
    trained with. None without a tag (random init, a local file: the model's own config decides)."""
    if tag is None:
        return None
    import open_clip

    return bool((open_clip.get_pretrained_cfg(model, tag) or {}).get("quick_gelu", False))


def uses_quick_gelu(model: torch.nn.Module) -> bool:
    from open_clip.transformer import QuickGELU

    return any(isinstance(m, QuickGELU) for m in model.modules())


def _load_local(model: torch.nn.Module, path: Path, where: str) -> None:
    import open_clip
    from open_clip.factory import load_state_dict

    if not path.is_file():
        raise EncoderError(f"{where}: no checkpoint at {path}; set {ENV_PRETRAINED} to an existing file")
    try:
        state = load_state_dict(str(path), weights_only=True)
    except pickle.UnpicklingError:
        raise EncoderError(f"{where}: refused {path}: it holds Python objects, not only weights (a TorchScript or full-model pickle); "
                           f"give a state dict (.bin/.pt/.safetensors)") from None
    except (RuntimeError, OSError, ValueError, EOFError) as e:
        raise EncoderError(f"{where}: cannot read {path} ({type(e).__name__}: {str(e)[:160]})") from None
    state = open_clip.factory.convert_state_dict(model, strip_prefix(state, "module."))
    load_exact(model, state, f"{where}: {path}", ignore={"text.transformer.embeddings.position_ids", "attn_mask"})
