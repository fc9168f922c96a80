"""AV-HuBERT Large, video only, on stock transformers (no fairseq): measured identical to the official model.

The transformer is ``transformers.HubertModel`` with the pre-LN ("stable layer norm") encoder: its
positional convolution (weight norm over dim 2, kernel 128, groups 16, last frame dropped), its 24 pre-LN
layers and final LayerNorm are AV-HuBERT's. Its convolutional feature encoder is replaced by the lip front
end below, a 3-D convolution and a PReLU ResNet-18 run per frame, followed by ``Linear(512, 1024)``; the
front end returns ``[zeros ; video]`` features, because AV-HuBERT concatenates absent audio features (zeros)
before the video ones. HuBERT's own feature projection is exactly AV-HuBERT's fusion: LayerNorm(2048) ->
Linear(2048, 1024). With ``conv_kernel = conv_stride = (1,)`` HuBERT's frame-length arithmetic is the
identity, so a per-frame padding mask goes through unchanged and a padded batch gives each clip's own result.

LoRA on the attention's Q and V projections (bottleneck 64, scale 2) is injected with peft (adapter
``default``: ``encoder.layers.0.attention.q_proj.lora_A.default.weight``). Module names follow the official checkpoint (``resnet.frontend3D.0`` ...), so its keys
map one to one (weights/official.py).
"""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from transformers import HubertConfig, HubertModel

from .config import AVHubertConfig

RESNET_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.PReLU(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + residual)


class ResNetTrunk(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        widths = [width * w // RESNET_WIDTHS[0] for w in RESNET_WIDTHS]
        inplanes = widths[0]
        for index, (planes, stride) in enumerate(zip(widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{index}", nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.output_size = inplanes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class LipResNet(nn.Module):
    """(B, 1, T, 88, 88) grey frames -> (B, 512, T): a 3-D stem over time, then a 2-D ResNet-18 per frame."""

    def __init__(self, width: int):
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, width, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.PReLU(width),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = ResNetTrunk(width)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        batch, _, frames = video.shape[:3]
        x = self.frontend3D(video)
        x = x.transpose(1, 2).reshape(batch * frames, x.shape[1], x.shape[3], x.shape[4])
        x = self.trunk(x)
        return x.view(batch, frames, -1).transpose(1, 2)


class LipFrontEnd(nn.Module):
    """AV-HuBERT's video feature extractor plus the zero audio features it is fused with: (B, 2D, T)."""

    def __init__(self, config: AVHubertConfig):
        super().__init__()
        self.resnet = LipResNet(config.resnet_width)
        self.proj = nn.Linear(self.resnet.trunk.output_size, config.hidden_size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        # The projection takes the transposed view as upstream does (a contiguous copy rounds differently, ~1e-6).
        features = self.proj(self.resnet(video).transpose(1, 2)).transpose(1, 2)
        return torch.cat([torch.zeros_like(features), features], dim=1)


def hubert_config(config: AVHubertConfig) -> HubertConfig:
    return HubertConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu",
        feat_extract_activation="gelu",
        layer_norm_eps=1e-5,
        num_conv_pos_embeddings=config.num_conv_pos_embeddings,
        num_conv_pos_embedding_groups=config.num_conv_pos_embedding_groups,
        conv_pos_batch_norm=False,
        do_stable_layer_norm=True,
        conv_dim=(2 * config.hidden_size,),
        conv_kernel=(1,),
        conv_stride=(1,),
        feat_proj_layer_norm=True,
        hidden_dropout=config.dropout,
        attention_dropout=config.dropout,
        activation_dropout=0.0,
        feat_proj_dropout=config.dropout,
        layerdrop=config.layerdrop,
        apply_spec_augment=False,
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
    )


class VideoEncoder(nn.Module):
    """Normalised grey mouth frames (B, T, 1, 88, 88) -> AV-HuBERT features (B, T, 1024) at 25 Hz."""

    def __init__(self, config: AVHubertConfig, attn_implementation: str = "sdpa", lora: bool = True):
        super().__init__()
        hubert = HubertModel(hubert_config(config))
        hubert.config._attn_implementation = attn_implementation
        hubert.feature_extractor = LipFrontEnd(config)
        if lora:
            # Q and V of every layer, bottleneck hidden / 16, scale 2: peft's base + B(A(x)) * alpha / r.
            rank = round(config.hidden_size / config.lora_reduction)
            adapter = LoraConfig(
                r=rank, lora_alpha=config.lora_scale * rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none"
            )
            inject_adapter_in_model(adapter, hubert)
        self.hubert = hubert

    def forward(self, video: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``frame_mask`` (B, T), true for real frames, makes a padded batch equal to one clip at a time."""
        batch, frames = video.shape[:2]
        video = video.reshape(batch, 1, frames, *video.shape[-2:])
        return self.hubert(video, attention_mask=frame_mask).last_hidden_state
