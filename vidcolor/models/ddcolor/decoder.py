"""DDColor's dual decoder (Kang et al., ICCV 2023, section 3): a pixel decoder that brings
the encoder's features back to full resolution, and a colour decoder whose learnable
queries read them through attention; every query becomes a colour embedding and, by its
dot product with the full-resolution pixel features, one channel of the output.

- Pixel decoder: three up-sampling blocks (each: a spectrally normalised 1x1 convolution,
  BatchNorm, ReLU, pixel shuffle x2 and a 2x2 blur; the skip feature through BatchNorm;
  both joined, ReLU, a spectrally normalised 3x3 convolution, ReLU, BatchNorm) from 1/32 to
  1/4 of the input, then a pixel shuffle x4 to full resolution (256 channels).
- Colour decoder, multi-scale: ``num_queries`` queries, nine layers of cross-attention to
  the pixel decoder's 1/16, 1/8 and 1/4 features in turn (with sine position encodings
  and a learned level embedding), self-attention and a feed-forward network (2048, ReLU),
  each followed by its residual and LayerNorm; an MLP makes the colour embeddings.
- Colour decoder, single-scale (the paper's ablation): a DETR decoder of six layers over
  the deepest encoder features, 256 queries.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN, HEADS, FEEDFORWARD = 256, 8, 2048


class SpectralConv2d(nn.Module):
    """A convolution whose weight is ``weight_orig / sigma`` with ``sigma = u . (W v)`` from
    the stored singular vectors (spectral normalisation, Miyato et al. 2018, at inference:
    the keys are those of PyTorch's ``spectral_norm``)."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool):
        super().__init__()
        self.padding = (kernel - 1) // 2
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight_orig)
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(cout), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(cin * kernel * kernel), dim=0))

    def weight(self) -> torch.Tensor:
        sigma = torch.dot(self.weight_u, self.weight_orig.flatten(1) @ self.weight_v)
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


def blur(x: torch.Tensor) -> torch.Tensor:
    """The mean of each 2x2 neighbourhood up and to the left (edges repeated): same size."""
    return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, 1)


class PixelShuffleUp(nn.Module):
    """Spectral 1x1 convolution (+ BatchNorm), ReLU, pixel shuffle by ``scale``, blur."""

    def __init__(self, cin: int, cout: int, scale: int, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = [SpectralConv2d(cin, cout * scale * scale, 1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout * scale * scale))
        self.conv = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur(F.pixel_shuffle(F.relu(self.conv(x)), self.scale))


class UpBlock(nn.Module):
    """Up-sample ``x`` x2 and join the skip feature (see the module's description)."""

    def __init__(self, up_in: int, skip_in: int, out: int):
        super().__init__()
        self.shuf = PixelShuffleUp(up_in, out, 2, batch_norm=True)
        self.bn = nn.BatchNorm2d(skip_in)
        self.conv = nn.Sequential(SpectralConv2d(out + skip_in, out, 3, bias=False), nn.ReLU(), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(torch.cat((self.shuf(x), self.bn(skip)), 1)))


def sine_positions(feature: torch.Tensor, features: int = 128, temperature: float = 10000.0) -> torch.Tensor:
    """The normalised sine position encoding of DETR for a map ``(B, C, H, W)``: ``(B, H*W, 2 * features)``,
    row positions first, then column positions, sines and cosines interleaved."""
    b, _, h, w = feature.shape
    scale = 2 * math.pi
    y = (torch.arange(1, h + 1, dtype=torch.float32, device=feature.device) / (h + 1e-6) * scale)
    x = (torch.arange(1, w + 1, dtype=torch.float32, device=feature.device) / (w + 1e-6) * scale)
    k = torch.arange(features, dtype=torch.float32, device=feature.device)
    rates = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / features)

    def encode(p: torch.Tensor) -> torch.Tensor:
        angles = p[:, None] / rates  # (n, features)
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), 2).flatten(1)

    pos = torch.cat((encode(y)[:, None].expand(h, w, features), encode(x)[None].expand(h, w, features)), 2)
    return pos.reshape(1, h * w, 2 * features).expand(b, -1, -1).to(feature.dtype)


class SelfAttentionLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = x + pos
        return self.norm(x + self.self_attn(q, q, x, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.multihead_attn(x + query_pos, memory + pos, memory, need_weights=False)[0])


class FFNLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(HIDDEN, FEEDFORWARD)
        self.linear2 = nn.Linear(FEEDFORWARD, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    def __init__(self, layers: int = 3):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class MultiScaleColorDecoder(nn.Module):
    def __init__(self, num_queries: int = 100, levels: int = 3, layers: int = 9, in_channels=(512, 512, 256)):
        super().__init__()
        self.transformer_self_attention_layers = nn.ModuleList(SelfAttentionLayer() for _ in range(layers))
        self.transformer_cross_attention_layers = nn.ModuleList(CrossAttentionLayer() for _ in range(layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer() for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(HIDDEN)
        self.query_feat = nn.Embedding(num_queries, HIDDEN)
        self.query_embed = nn.Embedding(num_queries, HIDDEN)
        self.level_embed = nn.Embedding(levels, HIDDEN)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, HIDDEN, 1) for c in in_channels)
        self.color_embed = MLP()

    def forward(self, levels: list[torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        memory = [self.input_proj[i](x).flatten(2).transpose(1, 2) + self.level_embed.weight[i] for i, x in enumerate(levels)]
        positions = [sine_positions(x) for x in levels]
        query_pos = self.query_embed.weight[None].expand(b, -1, -1)
        x = self.query_feat.weight[None].expand(b, -1, -1)
        for i, (cross, self_attention, ffn) in enumerate(zip(self.transformer_cross_attention_layers,
                                                             self.transformer_self_attention_layers,
                                                             self.transformer_ffn_layers)):
            level = i % len(levels)
            x = cross(x, memory[level], positions[level], query_pos)
            x = ffn(self_attention(x, query_pos))
        embeddings = self.color_embed(self.decoder_norm(x))
        return torch.einsum("bqc,bchw->bqhw", embeddings, pixels)


class DETRDecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.linear1 = nn.Linear(HIDDEN, FEEDFORWARD)
        self.linear2 = nn.Linear(FEEDFORWARD, HIDDEN)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)

    def forward(self, x, memory, pos, query_pos):
        q = x + query_pos
        x = self.norm1(x + self.self_attn(q, q, x, need_weights=False)[0])
        x = self.norm2(x + self.multihead_attn(x + query_pos, memory + pos, memory, need_weights=False)[0])
        return self.norm3(x + self.linear2(F.relu(self.linear1(x))))


class _Layers(nn.Module):
    def __init__(self, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(DETRDecoderLayer() for _ in range(layers))
        self.norm = nn.LayerNorm(HIDDEN)


class _Transformer(nn.Module):
    def __init__(self, layers: int):
        super().__init__()
        self.decoder = _Layers(layers)


class SingleColorDecoder(nn.Module):
    def __init__(self, in_channels: int, num_queries: int = 256, layers: int = 6):
        super().__init__()
        self.transformer = _Transformer(layers)
        self.query_embed = nn.Embedding(num_queries, HIDDEN)
        self.input_proj = nn.Conv2d(in_channels, HIDDEN, 1)

    def forward(self, deepest: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        memory = self.input_proj(deepest).flatten(2).transpose(1, 2)
        pos = sine_positions(deepest)
        query_pos = self.query_embed.weight[None].expand(b, -1, -1)
        x = torch.zeros_like(query_pos)
        for layer in self.transformer.decoder.layers:
            x = layer(x, memory, pos, query_pos)
        return torch.einsum("bqc,bchw->bqhw", self.transformer.decoder.norm(x), pixels)


class Decoder(nn.Module):
    """The release's ``decoder`` prefix: ``layers`` (three ``UpBlock``), ``last_shuf`` and
    ``color_decoder``; ``forward`` gives the query maps ``(B, num_queries, H, W)``."""

    def __init__(self, dims: tuple[int, ...], single: bool, num_queries: int, nf: int = 512):
        super().__init__()
        self.layers = nn.ModuleList([UpBlock(dims[3], dims[2], nf), UpBlock(nf, dims[1], nf), UpBlock(nf, dims[0], nf // 2)])
        self.last_shuf = PixelShuffleUp(nf // 2, nf // 2, 4, batch_norm=False)
        self.single = single
        self.color_decoder = (SingleColorDecoder(dims[3], num_queries) if single
                              else MultiScaleColorDecoder(num_queries, in_channels=(nf, nf, nf // 2)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out0 = self.layers[0](features[3], features[2])
        out1 = self.layers[1](out0, features[1])
        out2 = self.layers[2](out1, features[0])
        pixels = self.last_shuf(out2)
        if self.single:
            return self.color_decoder(features[3], pixels)
        return self.color_decoder([out0, out1, out2], pixels)
