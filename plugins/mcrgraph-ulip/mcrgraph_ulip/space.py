"""The ``ulip`` space: ULIP's PointBERT model (``ULIP_PointBERT`` / ULIP_WITH_IMAGE) from the
released ``pointbert_ULIP-2.pt``, or a seeded random init (tests and benchmarks).

Salesforce removed its Google Cloud links (salesforce/ULIP README, 05/23/2025) and reuploaded
every ULIP file to the Hugging Face dataset repository ``SFXX/ulip``; ``mcrgraph download ulip``
fetches the 06/09/2023 xyz-only PointBERT release from there (not the CVPR2024 10k xyzrgb model)
into the hub cache. A copy downloaded by hand is found under any of its names (``NAMES``) in
``~/.cache/mcrgraph/ulip/``, or wherever ``MCRGRAPH_ULIP_CHECKPOINT`` points."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

import mcrgraph
from mcrgraph.plugin import (
    ConnectorFileError, Download, EncoderError, PretrainedMCR, check_texts, env_overrides, hub_cached,
    load_exact, load_point_cloud, load_torch_weights, missing_weights, numpy_scalar_globals, parallel_map,
    pil_image, seeded, strip_prefix,
)

ENV_CHECKPOINT = "MCRGRAPH_ULIP_CHECKPOINT"
CHECKPOINT_NAME = "pointbert_ULIP-2.pt"
HUB_REPO = "SFXX/ulip"  # a dataset repository: ULIP-1/, ULIP-2/, the triplets
# The xyz-only 8k-point PointBERT with SLIP's ViT-B towers, pretrained on ULIP-Objaverse: the
# release C-MCR used. Path as other projects fetch it from SFXX/ulip (read offline, not listed
# here): tests/test_online.py::test_ulip_is_where_the_plugin_looks confirms it on the hub.
HUB_FILE = "ULIP-2/pretrained_models/ULIP-2-PointBERT-8k-xyz-pc-slip_vit_b-objaverse-pretrained.pt"
HUB_PAGE = f"https://huggingface.co/datasets/{HUB_REPO}/tree/main/ULIP-2/pretrained_models"
# the names a copy may have: ours, the one a browser gave for the old Google Cloud object, the hub's
NAMES = (CHECKPOINT_NAME, "pretrained_models_ckpt_zero-sho_classification_pointbert_ULIP-2.pt", HUB_FILE.rsplit("/", 1)[-1])
UNPINNED = ("no commit or digest of SFXX/ulip was readable offline when this was written; "
            "`pytest -m online tests/test_online.py` prints both")
# ImageNet statistics, as SLIP normalises (the image tower of ULIP_WITH_IMAGE is SLIP's ViT-B/16)
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def default_checkpoint() -> str:
    """Where the checkpoint is looked for when nothing names another place."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(cache / "mcrgraph" / "ulip" / CHECKPOINT_NAME)


class PointBertConfig(BaseModel):
    """PointBERT's PointTransformer; the defaults are PointTransformer_8192point.yaml, the
    configuration of ``pointbert_ULIP-2.pt`` (xyz input, 768-d output)."""

    model_config = ConfigDict(extra="forbid")
    trans_dim: int = Field(384, ge=1)
    depth: int = Field(12, ge=1)
    num_heads: int = Field(6, ge=1)
    group_size: int = Field(32, ge=1, description="points per neighbourhood (KNN)")
    num_group: int = Field(512, ge=1, description="neighbourhood centres (farthest point sampling)")
    encoder_dims: int = Field(256, ge=1)
    npoints: int = Field(8192, ge=1, description="points sampled from each cloud before grouping")

    def arch(self) -> dict[str, int]:
        return self.model_dump(exclude={"npoints"})


class TextConfig(BaseModel):
    """SLIP's CLIP-style text tower; the defaults are ULIP_PointBERT's."""

    model_config = ConfigDict(extra="forbid")
    width: int = Field(512, ge=1)
    layers: int = Field(12, ge=1)
    heads: int = Field(8, ge=1)
    context_length: int = Field(77, ge=2)
    vocab_size: int = Field(49408, ge=49408, description="CLIP's BPE vocabulary (the tokenizer's ids go up to 49407)")


class UlipConfig(BaseModel):
    """ULIP (PointBERT + SLIP's image and text towers) as an mcrgraph space."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("ulip", description="the space's name in mcrgraph")
    checkpoint: str | None = Field(default_factory=default_checkpoint,
                                   description=f"a local {CHECKPOINT_NAME} (or a checkpoint of the same architecture); None: seeded random init")
    point: PointBertConfig = Field(default_factory=PointBertConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    vision_model: str = Field("vit_base_patch16_224", description="the timm architecture of the image tower (built with num_classes=0)")
    image_size: int = Field(224, ge=1, description="the image tower's input size")
    embed_dim: int = Field(512, ge=1, description="the shared space's dimension")
    seed: int = Field(0, description="seeds the random init and the sampling of point clouds")
    device: str = "cpu"
    batch_size: int = Field(16, ge=1, description="items per forward pass")
    workers: int = Field(4, ge=1, description="threads that read point clouds and decode images")

    @classmethod
    def from_env(cls, **overrides) -> "UlipConfig":
        """Defaults, with ``MCRGRAPH_ULIP_CHECKPOINT`` (a file, or ``none`` for random init)
        applied. Without it the checkpoint is looked for in ``~/.cache/mcrgraph/ulip/``."""
        return cls(**{**env_overrides(checkpoint=ENV_CHECKPOINT), **overrides})

    def checkpoint_path(self) -> Path | None:
        """The file to load: the configured one; for the default place, a copy there under any of
        ``NAMES``, else the hub cache's, else the default path (missing)."""
        if self.checkpoint is None:
            return None
        path = Path(self.checkpoint).expanduser()
        if path.is_file() or str(path) != default_checkpoint():
            return path
        for name in NAMES:
            if (path.parent / name).is_file():
                return path.parent / name
        found = hub_cached(HUB_REPO, HUB_FILE, repo_type="dataset")
        return Path(found) if found else path


class UlipMCR(PretrainedMCR):
    modalities = ("3d", "image", "text")
    family = "ulip-pointbert"
    released = NAMES  # a file of one of these names is taken to be the released weights

    def __init__(self, config: UlipConfig | None = None):
        super().__init__(config or UlipConfig())
        self.batch_size = self.config.batch_size
        self.dim = self.config.embed_dim

    def weights_present(self) -> bool | None:
        path = self.config.checkpoint_path()
        return None if path is None else path.is_file()

    def downloads(self) -> list[Download]:
        """The released checkpoint from SFXX/ulip into the hub cache (where ``checkpoint_path``
        looks), unless a file is configured or already at the default place."""
        if self.config.checkpoint is None or str(Path(self.config.checkpoint).expanduser()) != default_checkpoint():
            return []
        path = self.config.checkpoint_path()
        if path.is_file() and str(path) != hub_cached(HUB_REPO, HUB_FILE, repo_type="dataset"):
            return []  # a copy by hand at the default place
        return [Download(f"ULIP-2 PointBERT ({CHECKPOINT_NAME})", repo_id=HUB_REPO, filename=HUB_FILE, repo_type="dataset",
                         unpinned=UNPINNED,
                         licence="the salesforce/ULIP repository's LICENSE.txt (no separate licence is stated for the weights)",
                         hint=f"or download it from {HUB_PAGE} and put it in {Path(default_checkpoint()).parent} "
                              f"(any of the names {', '.join(NAMES)}), or set {ENV_CHECKPOINT}=/path/to/it")]

    def weights_hint(self) -> str | None:
        return (f"run `mcrgraph download {self.name}` where you are online, or download {HUB_FILE.rsplit('/', 1)[-1]} from "
                f"{HUB_PAGE}, then set {ENV_CHECKPOINT}=/path/to/it")

    def architecture(self) -> str:
        # the seed also draws each cloud's points, so it changes 3d embeddings even with weights
        arch = self.config.model_dump(include={"point", "text", "vision_model", "image_size", "embed_dim", "seed"})
        return json.dumps(arch, sort_keys=True)

    def weights_source(self):
        return self.config.checkpoint, self.config.seed

    def build(self):
        """(model, image preprocess, tokenizer)."""
        return _build(self.config)

    # -- encoding -----------------------------------------------------------------
    def encode(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        if modality not in self.modalities:
            raise mcrgraph.UnknownModalityError(f"space {self.name!r} has no modality {modality!r}; it has: {', '.join(self.modalities)}")
        model, preprocess, tokenize = self.parts()
        cfg = self.config
        items = list(items)
        with torch.inference_mode():
            if modality == "3d":
                pts = parallel_map(lambda x: torch.from_numpy(load_point_cloud(x, cfg.point.npoints, cfg.seed)), items, cfg.workers)
                out = model.encode_pc(torch.stack(pts).to(cfg.device))
            elif modality == "image":
                pixels = parallel_map(lambda x: preprocess(pil_image(x)), items, cfg.workers)
                out = model.encode_image(torch.stack(pixels).to(cfg.device))
            else:
                out = model.encode_text(tokenize(check_texts(self.name, items)).to(cfg.device))
            return F.normalize(out.float(), dim=-1).cpu()


# -- building ---------------------------------------------------------------------------------
def build_model(cfg: UlipConfig, towers: bool = True):
    """The architecture with seeded random weights; ``towers=False`` leaves out the image and
    text towers (the point encoder and ``pc_projection`` only)."""
    from .model import UlipModel

    visual = None
    with seeded(cfg.seed):
        if towers:
            try:
                import timm
            except ImportError as e:
                raise EncoderError(f"{cfg.name}: timm is not installed ({e}); pip install timm") from None
            try:
                visual = timm.create_model(cfg.vision_model, pretrained=False, num_classes=0, img_size=cfg.image_size)
            except (RuntimeError, ValueError, TypeError) as e:
                raise EncoderError(f"{cfg.name}: timm cannot build {cfg.vision_model!r} at {cfg.image_size}px ({e})") from None
        return UlipModel(cfg.point.arch(), cfg.embed_dim, visual, cfg.text.model_dump() if towers else None)


def _build(cfg: UlipConfig):
    path = cfg.checkpoint_path()
    where = f"{cfg.name} (ULIP PointBERT, {path or 'random init'})"
    if path is not None and not path.is_file():
        raise missing_weights(where, ENV_CHECKPOINT, f"/path/to/{CHECKPOINT_NAME}",
                              FileNotFoundError(f"no file at {path}; `mcrgraph download ulip`, or download it from {HUB_PAGE}"))
    model = build_model(cfg)
    if path is not None:
        state, trained_as = read_checkpoint(path, where)
        load_exact(model, state, f"{where}" + (f" (trained as {trained_as})" if trained_as else ""))
    model.eval().to(cfg.device)
    return model, _image_transform(cfg.image_size), _tokenizer(cfg.text.context_length)


def read_checkpoint(path: Path, where: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict of an official ULIP checkpoint ({"state_dict": {"module.<key>": ...},
    "args": Namespace, ...}) or of a bare state dict, read without running pickled code."""
    try:
        ckpt = load_torch_weights(path, allow=_SAFE_GLOBALS)
    except ConnectorFileError as e:
        raise EncoderError(f"{where}: {e}") from None
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EncoderError(f"{where}: {path} is not a ULIP checkpoint (expected a dict with a 'state_dict' of tensors)")
    return strip_prefix(state, "module."), getattr(ckpt.get("args"), "model", None)


def _safe_globals() -> list:
    """What ULIP checkpoints pickle besides tensors: the argparse Namespace of training
    arguments ("args"), and numpy scalars its metrics may be (by the names numpy 1 and 2 give them)."""
    return [argparse.Namespace, *numpy_scalar_globals()]


_SAFE_GLOBALS = _safe_globals()


def _image_transform(size: int):
    from torchvision import transforms

    # SLIP's eval transform as read in facebookresearch/SLIP eval_zeroshot.py: Resize (default,
    # bilinear) + CenterCrop + ToTensor + ImageNet Normalize. Not verified against any ULIP
    # evaluation of images (ULIP only evaluates 3D); C-MCR/Ex-MCR never encode images with ULIP.
    return transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGE_MEAN, IMAGE_STD),
    ])


def _tokenizer(context_length: int):
    try:
        import open_clip
    except ImportError as e:
        raise EncoderError(f"ulip: open_clip (for CLIP's BPE tokenizer) is not installed ({e}); pip install open_clip_torch") from None
    bpe = open_clip.SimpleTokenizer()  # cleans as SLIP's tokenizer does: ftfy, html unescape, whitespace, lower

    def tokenize(texts: Sequence[str]) -> torch.Tensor:
        # SLIP's tokenizer: [sot] + bpe + [eot], cut at context_length (a cut loses the eot)
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = ([bpe.sot_token_id] + bpe.encode(text) + [bpe.eot_token_id])[:context_length]
            out[i, :len(ids)] = torch.tensor(ids)
        return out

    return tokenize
