"""The ``clap`` space: a LAION-CLAP model from a local checkpoint, the Hugging Face cache, or
a seeded random init, built without the network (laion_clap's own constructor downloads
roberta-base, and its tokenizer silently degrades offline).

Two backends run the same checkpoint: ``laion`` (laion_clap's own model code, what the papers
used; the ``mcrgraph-clap[laion]`` extra) and ``transformers`` (``ClapModel`` with the checkpoint's
keys converted, convert.py), which needs none of laion_clap's pins. Both read the same audio
input (features.py) and tokens, and give the same embeddings to float rounding (tested), so the
backend is not part of the fingerprint: caches and connectors made with one serve the other."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

from mcrgraph.plugin import (
    ConnectorFileError, Download, EncoderError, MCRGraphError, PretrainedMCR, audio_wave, check_texts,
    env_overrides, hub_cached, load_exact, load_torch_weights, missing_weights, numpy_scalar_globals,
    parallel_map, seeded, strip_prefix,
)

from .features import clip_features

ENV_CHECKPOINT, ENV_TOKENIZER, ENV_BACKEND = "MCRGRAPH_CLAP_CHECKPOINT", "MCRGRAPH_CLAP_TOKENIZER", "MCRGRAPH_CLAP_BACKEND"
HUB_REPO = "lukewys/laion_clap"  # where laion_clap's load_ckpt downloads its checkpoints from
TOKENIZER_REPO = "FacebookAI/roberta-base"  # roberta-base's own repository (the old name redirects there)
# Pinned commits: lukewys/laion_clap's "Upload music_speech_epoch_15_esc_89.25.pt" (Apr 2023, after
# the 630k checkpoints' upload of Feb 2023; the snapshot other projects' caches and Dockerfiles name,
# e.g. models--lukewys--laion_clap/snapshots/b3708341...), and roberta-base's main as cached
# elsewhere (models--roberta-base/snapshots/e2da8e2f...). No sha256 of these files was readable
# offline: the hub's ETag at the pinned commit is checked instead, and tests/test_online.py
# prints the digests to pin.
CHECKPOINT_REVISION = "b3708341862f581175dba5c356a4ebf74a9b6651"
TOKENIZER_REVISION = "e2da8e2f811d1448a5b465c236feacd80ffbac7b"
CHECKPOINT_SHA256: dict[str, str] = {}  # released name -> sha256, once read from the hub (none yet)
UNPINNED = "its sha256 was not readable offline; `pytest -m online tests/test_online.py` prints it"
TOKENIZER_FILES = {"vocab.json": None, "merges.txt": None, "config.json": None}  # what RobertaTokenizer reads (~1.4 MB in all); sizes: ask the hub
RELEASED = {"630k-best.pt": False, "630k-audioset-best.pt": False, "630k-fusion-best.pt": True, "630k-audioset-fusion-best.pt": True}
SAMPLE_RATE = 48_000
MAX_SAMPLES = 480_000  # 10 s: longer clips are fused (fusion on) or cropped, shorter ones repeat-padded
CONTEXT = 77
# roberta-base, which CLAP's text branch is; written out so the model builds offline
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                    layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
MIN_VOCAB = 1000  # roberta-base has 50,265; an offline fallback tokenizer has only its 5 specials


class ClapConfig(BaseModel):
    """One LAION-CLAP model as an mcrgraph space."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("clap", description="the space's name in mcrgraph")
    checkpoint: str | None = Field("630k-fusion-best.pt", description="a released checkpoint's name (looked up in laion_clap's folder and the Hugging Face cache, downloaded when online) or a local file; None: seeded random init")
    fusion: bool | None = Field(None, description="feature fusion for clips over 10 s; None: on for the *fusion* checkpoints")
    amodel: str = Field("HTSAT-tiny", description="audio encoder architecture (laion_clap's model configs; the transformers backend has HTSAT-tiny)")
    backend: Literal["auto", "laion", "transformers"] = Field("auto", description="which code runs the model: laion_clap's, or transformers' ClapModel; auto: laion_clap when it is installed")
    tokenizer: str | None = Field(None, description="a folder with roberta-base's vocab.json and merges.txt; None: roberta-base from the Hugging Face cache")
    text_config: dict[str, Any] = Field(default_factory=dict, description="roberta config fields to override (tests use a 1-layer text branch); a checkpoint must match them")
    seed: int = Field(0, description="seeds the random init when checkpoint is None")
    device: str = "cpu"
    batch_size: int = Field(16, ge=1, description="items per forward pass")
    workers: int = Field(4, ge=1, description="threads that decode and resample sound files")

    @classmethod
    def from_env(cls, **overrides) -> "ClapConfig":
        """Defaults, with ``MCRGRAPH_CLAP_CHECKPOINT`` (a file, a released name, or ``none``),
        ``MCRGRAPH_CLAP_TOKENIZER`` (a folder) and ``MCRGRAPH_CLAP_BACKEND`` (laion, transformers) applied."""
        return cls(**{**env_overrides(checkpoint=ENV_CHECKPOINT, tokenizer=ENV_TOKENIZER, backend=ENV_BACKEND), **overrides})

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        import importlib.util

        try:
            found = importlib.util.find_spec("laion_clap") is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as absent
            found = False
        return "laion" if found else "transformers"

    def use_fusion(self) -> bool:
        if self.fusion is not None:
            return self.fusion
        return "fusion" in Path(self.checkpoint or "").name

    def checkpoint_file(self) -> Path | None:
        """Where the checkpoint is on disk, or None (random init, or not found)."""
        if self.checkpoint is None:
            return None
        p = Path(self.checkpoint).expanduser()
        if p.is_file() or self.checkpoint not in RELEASED:
            return p
        found = hub_cached(HUB_REPO, self.checkpoint, revision=CHECKPOINT_REVISION) or hub_cached(HUB_REPO, self.checkpoint)
        if found:
            return Path(found)
        with contextlib.suppress(ImportError):
            import importlib.util

            spec = importlib.util.find_spec("laion_clap")
            if spec and spec.origin:
                here = Path(spec.origin).parent / self.checkpoint  # where laion_clap's load_ckpt saves it
                if here.is_file():
                    return here
        return None


class ClapMCR(PretrainedMCR):
    modalities = ("audio", "text")
    dim = 512
    family = "laion_clap"
    released = tuple(RELEASED)

    def __init__(self, config: ClapConfig | None = None):
        super().__init__(config or ClapConfig())
        self.batch_size = self.config.batch_size
        self._tokenizer = None

    def weights_present(self) -> bool | None:
        cfg = self.config
        if cfg.checkpoint is None:
            return None
        f = cfg.checkpoint_file()
        return f is not None and f.is_file() and _tokenizer_source(cfg) is not None

    def downloads(self) -> list[Download]:
        """The released checkpoint (from laion_clap's hub repository, into the hub cache that
        ``checkpoint_file`` reads) and roberta-base's tokenizer files (likewise), unless a local
        file or folder is configured instead."""
        cfg = self.config
        out = []
        local = cfg.checkpoint is not None and Path(cfg.checkpoint).expanduser().is_file()
        if cfg.checkpoint in RELEASED and not local:
            out.append(Download(f"LAION-CLAP {cfg.checkpoint}", repo_id=HUB_REPO, filename=cfg.checkpoint,
                                revision=CHECKPOINT_REVISION, sha256=CHECKPOINT_SHA256.get(cfg.checkpoint),
                                unpinned="" if cfg.checkpoint in CHECKPOINT_SHA256 else UNPINNED,
                                licence="CC0-1.0 (the hub repository's model card)",
                                hint=f"or set {ENV_CHECKPOINT}=/path/to/{cfg.checkpoint}"))
        if cfg.tokenizer is None and cfg.checkpoint is not None:
            out += [Download(f"roberta-base tokenizer ({name})", repo_id=TOKENIZER_REPO, filename=name, size=size,
                             revision=TOKENIZER_REVISION, unpinned="a small file (not in LFS): the hub's ETag is its git blob id, checked",
                             licence="MIT (roberta-base)", hint=f"or set {ENV_TOKENIZER}=/path/to/roberta-base (a folder with vocab.json and merges.txt)")
                    for name, size in TOKENIZER_FILES.items()]
        return out

    def weights_hint(self) -> str | None:
        cfg = self.config
        need = []
        f = cfg.checkpoint_file()
        if f is None or not f.is_file():
            need.append(f"{ENV_CHECKPOINT}=/path/to/{cfg.checkpoint}")
        if _tokenizer_source(cfg) is None:
            need.append(f"{ENV_TOKENIZER}=/path/to/roberta-base (vocab.json, merges.txt)")
        return "set " + " and ".join(need) + f", or run `mcrgraph download {self.name}` where you are online" if need else None

    def architecture(self) -> str:
        cfg = self.config
        return f"{cfg.amodel}|{cfg.use_fusion()}|{json.dumps(cfg.text_config, sort_keys=True)}"

    def weights_source(self):
        return self.config.checkpoint, self.config.seed

    def build(self):
        """(model, backend). roberta-base's tokenizer is loaded on the first text (``tokenizer()``),
        so a user who only encodes sounds needs only the checkpoint."""
        backend = self.config.resolved_backend()
        build = _build_transformers if backend == "transformers" else _build_laion
        return build(self.config), backend

    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(self.config)
            return self._tokenizer

    def encode(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        tokenizer = self.tokenizer() if modality == "text" else None  # first: its offline trap is the likelier failure
        model, backend = self.parts()
        with torch.inference_mode():
            if modality == "text":
                tokens = tokenizer(check_texts(self.name, items), padding="max_length", truncation=True, max_length=CONTEXT, return_tensors="pt")
                ids, mask = tokens["input_ids"].to(self.config.device), tokens["attention_mask"].to(self.config.device)
                if backend == "transformers":
                    out = features(model.get_text_features(input_ids=ids, attention_mask=mask))
                else:
                    out = model.get_text_embedding({"input_ids": ids, "attention_mask": mask})
            else:
                waves = parallel_map(lambda x: audio_wave(x, SAMPLE_RATE, default_sr=SAMPLE_RATE), list(items), self.config.workers)
                feats = [clip_features(w, MAX_SAMPLES, self.config.use_fusion()) for w in waves]
                if backend == "transformers":
                    out = features(model.get_audio_features(input_features=torch.stack([f["mel_fusion"] for f in feats]).to(self.config.device),
                                                            is_longer=torch.stack([f["longer"] for f in feats]).to(self.config.device)))
                else:
                    out = model.get_audio_embedding(feats)
            return out.float().cpu()


def features(out) -> torch.Tensor:
    """The embeddings ``ClapModel.get_text_features``/``get_audio_features`` return: a tensor in
    transformers 4.x, a ``BaseModelOutputWithPooling`` holding them as ``pooler_output`` in 5.x
    (both already projected and L2-normalised)."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise EncoderError(f"transformers' ClapModel returned a {type(out).__name__} with no embeddings this plugin knows "
                       f"(a tensor, or pooler_output); set {ENV_BACKEND}=laion")


def _tokenizer_source(cfg: ClapConfig) -> str | None:
    if cfg.tokenizer:
        return cfg.tokenizer if Path(cfg.tokenizer, "vocab.json").is_file() else None
    found = (hub_cached(TOKENIZER_REPO, "vocab.json", revision=TOKENIZER_REVISION) or hub_cached("roberta-base", "vocab.json")
             or hub_cached(TOKENIZER_REPO, "vocab.json"))
    return str(Path(found).parent) if found else None


def load_tokenizer(cfg: ClapConfig):
    """roberta-base's tokenizer from a folder or the cache, refusing one that has only its
    special tokens (what transformers returns offline without an error)."""
    from transformers import RobertaTokenizer

    source = _tokenizer_source(cfg)
    if source is None and cfg.tokenizer:  # a folder was named: never swap in another tokenizer
        raise EncoderError(f"{cfg.name}: no vocab.json in {cfg.tokenizer}; set {ENV_TOKENIZER} to a folder with roberta-base's "
                           f"vocab.json and merges.txt")
    if source is None:
        where = "roberta-base's tokenizer"
        try:  # online, this fills the cache
            tok = RobertaTokenizer.from_pretrained("roberta-base")
        except Exception as e:
            raise missing_weights(f"{cfg.name}: {where}", ENV_TOKENIZER, "/path/to/roberta-base (a folder with vocab.json and merges.txt)", e) from None
    else:
        try:
            tok = RobertaTokenizer.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as e:
            raise EncoderError(f"{cfg.name}: cannot read the tokenizer in {source} ({e})") from None
    if len(tok) < MIN_VOCAB and not cfg.text_config:
        raise EncoderError(
            f"{cfg.name}: the tokenizer has only {len(tok)} tokens (roberta-base has 50,265): transformers gives such a tokenizer "
            f"when it cannot find roberta-base offline, and every text would encode the same. Set {ENV_TOKENIZER} to a folder "
            f"with roberta-base's vocab.json and merges.txt"
        )
    if len(tok) <= len(tok.all_special_tokens):
        raise EncoderError(f"{cfg.name}: the tokenizer's vocabulary is only its {len(tok)} special tokens; every text would encode the "
                           f"same. Set {ENV_TOKENIZER} to a folder with roberta-base's vocab.json and merges.txt")
    return tok


def _checkpoint_state(cfg: ClapConfig, where: str) -> tuple[Path | None, dict[str, torch.Tensor] | None]:
    """(path, laion_clap state dict without ``module.``) of the configured checkpoint, fetched
    when it is a released name not on disk; (None, None) for random init."""
    path = cfg.checkpoint_file()
    if cfg.checkpoint is not None and (path is None or not path.is_file()):
        path = _download(cfg, where)
    if path is None:
        return None, None
    try:  # the released files hold an optimizer whose lr is a numpy scalar (laion_clap's cosine schedule)
        state = load_torch_weights(path, allow=numpy_scalar_globals())
    except ConnectorFileError as e:
        raise EncoderError(f"{where}: {e}") from None
    return path, strip_prefix(state.get("state_dict", state), "module.")


def _build_laion(cfg: ClapConfig):
    try:
        import laion_clap  # noqa: F401  (puts clap_module on sys.path)
        import clap_module.model as clap_model
        from clap_module import create_model
    except ImportError as e:
        raise EncoderError(f"{cfg.name}: laion_clap is not installed ({e}); pip install 'mcrgraph-clap[laion]', "
                           f"or set {ENV_BACKEND}=transformers") from None
    from transformers import RobertaConfig, RobertaModel

    where = f"{cfg.name} ({cfg.checkpoint or 'random init'})"
    path, state = _checkpoint_state(cfg, where)
    roberta = RobertaConfig(**{**ROBERTA_BASE, **cfg.text_config})

    class OfflineRoberta:  # what CLAP's constructor calls; the weights come from the checkpoint
        @staticmethod
        def from_pretrained(*args, **kwargs):
            return RobertaModel(roberta)

    real = clap_model.RobertaModel
    clap_model.RobertaModel = OfflineRoberta
    try:
        with seeded(cfg.seed):
            model, _ = create_model(cfg.amodel, "roberta", precision="fp32", device="cpu",
                                    enable_fusion=cfg.use_fusion(),
                                    fusion_type="aff_2d" if cfg.use_fusion() else "None")
    except (KeyError, RuntimeError) as e:
        raise EncoderError(f"{where}: laion_clap cannot build audio model {cfg.amodel!r} ({e})") from None
    finally:
        clap_model.RobertaModel = real
    if state is not None:
        load_exact(model, state, f"{where}: {path}", ignore={"text_branch.embeddings.position_ids"})
    return model.eval().to(cfg.device)


def hf_config(cfg: ClapConfig):
    """transformers' ClapConfig for the architecture laion_clap builds from ``cfg``."""
    from transformers import ClapConfig as HFClapConfig

    if cfg.amodel != "HTSAT-tiny":
        raise EncoderError(f"{cfg.name}: the transformers backend has the HTSAT-tiny audio tower only (every released "
                           f"LAION-CLAP checkpoint), not {cfg.amodel!r}; set {ENV_BACKEND}=laion")
    if not cfg.use_fusion():
        raise EncoderError(f"{cfg.name}: the transformers backend runs the fusion checkpoints (630k-fusion-best.pt, as "
                           f"C-MCR used); without fusion laion_clap computes its log-mel inside the model. Set {ENV_BACKEND}=laion")
    text = {**ROBERTA_BASE, **cfg.text_config}
    return HFClapConfig(text_config=text, audio_config={"enable_fusion": True, "fusion_type": "aff_2d"}, projection_dim=512)


def _build_transformers(cfg: ClapConfig):
    from transformers import ClapModel

    from .convert import laion_to_hf

    where = f"{cfg.name} ({cfg.checkpoint or 'random init'})"
    hf = hf_config(cfg)
    with seeded(cfg.seed):
        model = ClapModel(hf)
    path, state = _checkpoint_state(cfg, where)
    if state is not None:
        load_exact(model, laion_to_hf(state), f"{where}: {path}",
                   ignore={"text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"})
    return model.eval().to(cfg.device)


def _download(cfg: ClapConfig, where: str) -> Path:
    if cfg.checkpoint not in RELEASED:
        raise EncoderError(f"{where}: no checkpoint file at {cfg.checkpoint}; set {ENV_CHECKPOINT} to a LAION-CLAP checkpoint "
                           f"or one of the released names: {', '.join(RELEASED)}")
    download = next(d for d in ClapMCR(cfg).downloads() if d.repo_id == HUB_REPO)
    try:  # pinned and checked, as `mcrgraph download clap` does
        return download.fetch(progress=False)
    except MCRGraphError as e:
        raise missing_weights(where, ENV_CHECKPOINT, f"/path/to/{cfg.checkpoint}", e) from None
