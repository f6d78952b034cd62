"""A BERT-style encoder: ``pipeline_opt.training.models.bert:build``.

Token and position embeddings, post-norm encoder layers (self-attention through SDPA, a GELU feed-forward), dropout
on every residual branch, and a token-prediction head trained with cross entropy on ``labels`` (-100 ignored).
With ``experts > 0`` the feed-forward is a mixture of experts with expert-choice routing: each expert takes its
top-``capacity`` tokens, so every shape is static and the planner traces it like any other layer.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

INPUTS = ("input_ids=int64[16,128]<8192", "labels=int64[16,128]<8192")
STACK_ARG = "layers"


class ExpertChoiceFFN(nn.Module):
    """``experts`` GELU MLPs; each picks ``capacity_factor × tokens / experts`` tokens by gate score."""

    def __init__(self, d_model: int, hidden: int, experts: int, capacity_factor: float = 1.0):
        super().__init__()
        self.experts, self.capacity_factor = experts, capacity_factor
        self.gate = nn.Linear(d_model, experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(experts, d_model, hidden) * 0.02)
        self.w2 = nn.Parameter(torch.randn(experts, hidden, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])
        scores = F.softmax(self.gate(tokens).float(), dim=-1).to(tokens.dtype)
        capacity = max(1, int(tokens.shape[0] * self.capacity_factor / self.experts))
        weight, index = scores.t().topk(capacity, dim=-1)  # experts × capacity
        hidden = F.gelu(torch.bmm(tokens[index], self.w1.to(tokens.dtype)))
        out = torch.bmm(hidden, self.w2.to(tokens.dtype)) * weight.unsqueeze(-1)
        combined = torch.zeros_like(tokens).index_add(0, index.reshape(-1), out.reshape(-1, tokens.shape[-1]))
        return combined.view_as(x)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float, experts: int):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.ffn = (ExpertChoiceFFN(d_model, 4 * d_model, experts) if experts else
                    nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        x = self.ln1(x + self.drop(self.proj(a)))
        return self.ln2(x + self.drop(self.ffn(x)))


class BertEncoder(nn.Module):
    def __init__(self, vocab: int, d_model: int, layers: int, heads: int, max_len: int, dropout: float,
                 experts: int):
        super().__init__()
        self.vocab = vocab
        self.tok, self.pos = nn.Embedding(vocab, d_model), nn.Embedding(max_len, d_model)
        self.ln, self.drop = nn.LayerNorm(d_model), nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderLayer(d_model, heads, dropout, experts) for _ in range(layers))
        self.head = nn.Linear(d_model, vocab)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.drop(self.ln(self.tok(input_ids) + self.pos(positions)))
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def loss(self, batch: dict) -> torch.Tensor:
        logits = self(batch["input_ids"])
        return F.cross_entropy(logits.float().view(-1, self.vocab), batch["labels"].long().view(-1),
                               ignore_index=-100)


def build(vocab: int = 8192, d_model: int = 256, layers: int = 4, heads: int = 4, max_len: int = 512,
          dropout: float = 0.1, experts: int = 0) -> BertEncoder:
    from pipeline_opt.training import TrainingError

    if d_model % heads:
        raise TrainingError(f"d_model {d_model} is not divisible by heads {heads}")
    return BertEncoder(vocab, d_model, layers, heads, max_len, dropout, experts)
