"""ULIP_WITH_IMAGE as salesforce/ULIP builds it for ``ULIP_PointBERT``, written here with the
same module and parameter names so that ``pointbert_ULIP-2.pt`` loads by its state-dict keys:

- ``point_encoder.*``: PointBERT's PointTransformer (models/pointbert/point_encoder.py, dvae.py)
- ``pc_projection`` [768, embed_dim]
- ``visual.*``: timm ``vit_base_patch16_224`` with num_classes=0 (SLIP's image tower),
  ``image_projection`` [768, embed_dim]
- ``transformer.resblocks.*``, ``token_embedding``, ``positional_embedding``, ``ln_final``,
  ``text_projection``, ``logit_scale``: SLIP's CLIP-style text tower (QuickGELU, causal mask)

Dropout and drop-path are left out: they are identities in eval mode and hold no weights.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


# -- grouping: FPS centres + KNN neighbourhoods (models/pointbert/dvae.py) --------------------
def farthest_point_sample(xyz: torch.Tensor, n: int) -> torch.Tensor:
    """Indices (B, n) of ``n`` farthest points of each cloud in ``xyz`` (B, N, 3), vectorised
    over the batch. Starts from point index 0, as (from memory, unverified) the CUDA
    ``pointnet2_ops.furthest_point_sample`` that salesforce/ULIP calls does, so embeddings are
    deterministic. C-MCR's bundled pure-torch copy starts from a random point instead, so its
    point embeddings vary slightly from run to run."""
    B, N, _ = xyz.shape
    idx = torch.zeros(B, n, dtype=torch.long, device=xyz.device)
    nearest = torch.full((B, N), float("inf"), dtype=xyz.dtype, device=xyz.device)
    farthest = torch.zeros(B, dtype=torch.long, device=xyz.device)
    rows = torch.arange(B, device=xyz.device)
    for i in range(n):
        idx[:, i] = farthest
        centre = xyz[rows, farthest].unsqueeze(1)  # B 1 3
        nearest = torch.minimum(nearest, ((xyz - centre) ** 2).sum(-1))
        farthest = nearest.argmax(-1)
    return idx


def square_distance(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(B, N, M) squared distances, computed as the official code does."""
    B, N, _ = src.shape
    _, M, _ = dst.shape
    dist = -2 * torch.matmul(src, dst.permute(0, 2, 1))
    dist += torch.sum(src ** 2, -1).view(B, N, 1)
    dist += torch.sum(dst ** 2, -1).view(B, 1, M)
    return dist


def knn_point(k: int, xyz: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    _, idx = torch.topk(square_distance(centres, xyz), k, dim=-1, largest=False, sorted=False)
    return idx


class Group(nn.Module):
    def __init__(self, num_group: int, group_size: int):
        super().__init__()
        self.num_group, self.group_size = num_group, group_size

    def forward(self, xyz: torch.Tensor):
        B, N, _ = xyz.shape
        xyz = xyz[:, :, :3].contiguous()
        fps = farthest_point_sample(xyz, self.num_group)
        center = torch.gather(xyz, 1, fps.unsqueeze(-1).expand(-1, -1, 3))  # B G 3
        idx = knn_point(self.group_size, xyz, center)  # B G M
        idx = (idx + torch.arange(B, device=xyz.device).view(-1, 1, 1) * N).view(-1)
        neighborhood = xyz.reshape(B * N, 3)[idx].view(B, self.num_group, self.group_size, 3)
        return neighborhood - center.unsqueeze(2), center


class Encoder(nn.Module):
    """Mini-PointNet over each neighbourhood."""

    def __init__(self, encoder_channel: int, input_dim: int = 3):
        super().__init__()
        self.encoder_channel = encoder_channel
        self.first_conv = nn.Sequential(nn.Conv1d(input_dim, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Conv1d(512, encoder_channel, 1))

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        bs, g, n, c = groups.shape
        feature = self.first_conv(groups.reshape(bs * g, n, c).transpose(2, 1))  # BG 256 n
        glob = torch.max(feature, dim=2, keepdim=True)[0]
        feature = self.second_conv(torch.cat([glob.expand(-1, -1, n), feature], dim=1))  # [global, local]
        return torch.max(feature, dim=2)[0].reshape(bs, g, self.encoder_channel)


# -- the transformer (models/pointbert/point_encoder.py) --------------------------------------
class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)  # TransformerEncoder never passes qkv_bias
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        # softmax(q·kᵀ·scale)·v as PointBERT writes it out, fused by torch (no B x H x N x N matrix
        # kept); same weights, same keys
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerEncoder(nn.Module):
    def __init__(self, embed_dim: int, depth: int, num_heads: int):
        super().__init__()
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(depth)])

    def forward(self, x, pos):
        for block in self.blocks:
            x = block(x + pos)  # the position is re-added before every block
        return x


class PointTransformer(nn.Module):
    """PointBERT; output [cls ‖ max over group tokens], 2 * trans_dim wide."""

    def __init__(self, trans_dim: int, depth: int, num_heads: int, group_size: int, num_group: int, encoder_dims: int):
        super().__init__()
        self.trans_dim = trans_dim
        self.group_divider = Group(num_group=num_group, group_size=group_size)
        self.encoder = Encoder(encoder_channel=encoder_dims)
        self.reduce_dim = nn.Linear(encoder_dims, trans_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, trans_dim))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, trans_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, trans_dim))
        self.blocks = TransformerEncoder(embed_dim=trans_dim, depth=depth, num_heads=num_heads)
        self.norm = nn.LayerNorm(trans_dim)

    def forward(self, pts: torch.Tensor) -> torch.Tensor:
        neighborhood, center = self.group_divider(pts)
        tokens = self.reduce_dim(self.encoder(neighborhood))
        B = tokens.size(0)
        x = torch.cat((self.cls_token.expand(B, -1, -1), tokens), dim=1)
        pos = torch.cat((self.cls_pos.expand(B, -1, -1), self.pos_embed(center)), dim=1)
        x = self.norm(self.blocks(x, pos))
        return torch.cat([x[:, 0], x[:, 1:].max(1)[0]], dim=-1)


# -- SLIP's text tower (models/ULIP_models.py, from openai/CLIP) ------------------------------
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = nn.LayerNorm(d_model)

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x, mask):
        for block in self.resblocks:
            x = block(x, mask)
        return x


# -- the whole model ---------------------------------------------------------------------------
class UlipModel(nn.Module):
    """ULIP_WITH_IMAGE. ``visual`` is a timm model (or None, then the image and text towers are
    left out: used to inspect the point encoder alone)."""

    def __init__(self, point: dict, embed_dim: int, visual: nn.Module | None, text: dict | None):
        super().__init__()
        self.point_encoder = PointTransformer(**point)
        self.pc_projection = nn.Parameter(torch.empty(2 * point["trans_dim"], embed_dim))
        nn.init.normal_(self.pc_projection, std=embed_dim ** -0.5)
        if visual is not None:
            self.visual = visual
            width = int(visual.num_features)
            self.image_projection = nn.Parameter(torch.empty(width, embed_dim))
            nn.init.normal_(self.image_projection, std=width ** -0.5)
        if text is not None:
            w, n = text["width"], text["context_length"]
            self.transformer = Transformer(w, text["layers"], text["heads"])
            self.token_embedding = nn.Embedding(text["vocab_size"], w)
            self.positional_embedding = nn.Parameter(torch.empty(n, w))
            self.ln_final = nn.LayerNorm(w)
            self.text_projection = nn.Parameter(torch.empty(w, embed_dim))
            self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
            # not in the state dict: the official model keeps it as a plain attribute
            self.register_buffer("attn_mask", torch.full((n, n), float("-inf")).triu_(1), persistent=False)
            self._init_text()

    def _init_text(self):  # ULIP_WITH_IMAGE.initialize_parameters
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        t = self.transformer
        proj_std = (t.width ** -0.5) * ((2 * t.layers) ** -0.5)
        attn_std, fc_std = t.width ** -0.5, (2 * t.width) ** -0.5
        for block in t.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=t.width ** -0.5)

    def encode_pc(self, pc: torch.Tensor) -> torch.Tensor:
        return self.point_encoder(pc) @ self.pc_projection

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image) @ self.image_projection

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2), self.attn_mask).permute(1, 0, 2)  # NLD <-> LND
        x = self.ln_final(x)
        # the features at the end-of-text token (the highest id in each sequence)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
