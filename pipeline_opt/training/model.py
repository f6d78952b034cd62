"""Reference models: the anchor's GPT-style decoder and a small MLP for tabular rows.

Invariant: every model exposes ``blocks`` (an ``nn.ModuleList`` that activation checkpointing wraps) and
``loss(batch)``; the GPT block is the anchor's block, so memory and speed compare one to one with the anchor.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """Pre-norm decoder block: causal attention (SDPA) and a 4× GELU MLP."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.fc, self.out = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Token embedding → ``layers`` blocks → LayerNorm → vocabulary head (no weight tying, as the anchor)."""

    def __init__(self, vocab: int = 32000, d_model: int = 1024, layers: int = 24, heads: int = 16,
                 sparse_embeddings: bool = False):
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding(vocab, d_model, sparse=sparse_embeddings)
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def loss(self, batch: dict) -> torch.Tensor:
        """Next-token loss on ``batch["tokens"]`` (the anchor's objective: predict each token from its prefix)."""
        idx = batch["tokens"]
        return F.cross_entropy(self(idx).float().view(-1, self.vocab), idx.view(-1))


class MLP(nn.Module):
    """Regression MLP for numeric table rows; standardises inputs and target with statistics it stores.

    Invariant: ``fit_scaling`` runs once (first batch); the statistics live in buffers, so a checkpoint restores
    them and a resumed run sees the same scaling.
    """

    # buffers registered in __init__ (register_buffer), declared for the type checker
    x_mean: torch.Tensor
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, in_features: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.inp = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.GELU()) for _ in range(layers))
        self.head = nn.Linear(hidden, 1)
        for name, n in (("x_mean", in_features), ("x_std", in_features), ("y_mean", 1), ("y_std", 1)):
            self.register_buffer(name, torch.zeros(n) if "mean" in name else torch.ones(n))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_scaling(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if getattr(self, "_planning", False) or bool(self.fitted):
            return
        self.x_mean.copy_(x.float().mean(0))
        self.x_std.copy_(x.float().std(0).clamp_min(1e-6))
        self.y_mean.copy_(y.float().mean().view(1))
        self.y_std.copy_(y.float().std().clamp_min(1e-6).view(1))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.inp(((x.float() - self.x_mean) / self.x_std).to(self.inp.weight.dtype)))
        for block in self.blocks:
            h = h + block(h)
        return self.head(h).squeeze(-1)

    def loss(self, batch: dict) -> torch.Tensor:
        """Mean squared error on the standardised target ``batch["y"]`` from features ``batch["x"]``."""
        x, y = batch["x"], batch["y"]
        self.fit_scaling(x, y)
        target = (y.float() - self.y_mean) / self.y_std
        return F.mse_loss(self(x).float(), target)


def build_model(settings, in_features: int = 0) -> nn.Module:
    """A model from ``ModelSettings`` (``kind`` mlp needs ``in_features``)."""
    from pipeline_opt.training import TrainingError

    if settings.kind == "gpt":
        if settings.hidden % settings.heads:
            raise TrainingError(f"model.hidden {settings.hidden} is not divisible by model.heads {settings.heads}")
        return GPT(settings.vocab, settings.hidden, settings.layers, settings.heads,
                   sparse_embeddings=getattr(settings, "sparse_embeddings", False))
    if settings.kind == "mlp":
        if in_features <= 0:
            raise TrainingError("model.kind 'mlp' needs at least one feature column")
        return MLP(in_features, settings.hidden, settings.layers)
    raise TrainingError(f"unknown model.kind {settings.kind!r}; allowed: mlp, gpt")
