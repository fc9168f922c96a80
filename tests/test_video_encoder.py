"""The AV-HuBERT video encoder on stock transformers: shapes, official module names, padding masks."""

import pytest
import torch

from omniavsr_cli.model.config import AVHubertConfig
from omniavsr_cli.model.video_encoder import VideoEncoder

TINY = AVHubertConfig(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    resnet_width=8,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    model = VideoEncoder(TINY, attn_implementation="eager").eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, as a trained checkpoint has
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model


def test_module_names_follow_the_official_checkpoint(encoder):
    keys = set(encoder.hubert.state_dict())
    for key in (
        "feature_extractor.resnet.frontend3D.0.weight",
        "feature_extractor.resnet.frontend3D.1.running_var",
        "feature_extractor.resnet.frontend3D.2.weight",
        "feature_extractor.resnet.trunk.layer2.0.downsample.1.weight",
        "feature_extractor.resnet.trunk.layer4.1.relu2.weight",
        "feature_extractor.proj.weight",
        "feature_projection.layer_norm.weight",
        "feature_projection.projection.weight",
        "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
        "encoder.layers.1.attention.q_proj.base_layer.weight",
        "encoder.layers.1.attention.q_proj.lora_A.default.weight",
        "encoder.layers.0.attention.v_proj.lora_B.default.weight",
        "encoder.layers.0.feed_forward.intermediate_dense.weight",
        "encoder.layer_norm.weight",
    ):
        assert key in keys, key
    assert not any(key.startswith("feature_extractor.conv_layers") for key in keys)
    assert encoder.hubert.feature_projection.layer_norm.normalized_shape == (128,)


def test_output_is_one_feature_per_frame(encoder):
    out = encoder(torch.randn(2, 9, 1, 88, 88))
    assert out.shape == (2, 9, 64)


def test_a_masked_padded_batch_equals_each_clip_alone(encoder):
    torch.manual_seed(1)
    long, short = torch.randn(1, 12, 1, 88, 88), torch.randn(1, 5, 1, 88, 88)
    batch = torch.zeros(2, 12, 1, 88, 88)
    batch[0], batch[1, :5] = long[0], short[0]
    mask = torch.tensor([[True] * 12, [True] * 5 + [False] * 7])
    with torch.no_grad():
        together = encoder(batch, mask)
        torch.testing.assert_close(together[0], encoder(long)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(together[1, :5], encoder(short)[0], atol=1e-5, rtol=1e-5)
        unmasked = encoder(batch)
    assert (unmasked[1, :5] - encoder(short)[0]).abs().max() > 1e-3  # without the mask, padding leaks in


def test_audio_half_of_the_fusion_is_zeros(encoder):
    features = encoder.hubert.feature_extractor(torch.randn(1, 1, 4, 88, 88))
    assert features.shape == (1, 128, 4)
    assert torch.all(features[:, :64] == 0) and features[:, 64:].abs().sum() > 0


def test_real_size_matches_av_hubert_large_on_the_meta_device():
    from omniavsr_cli.model.config import AVHubertConfig

    with torch.device("meta"):
        encoder = VideoEncoder(AVHubertConfig())
    assert sum(p.numel() for n, p in encoder.named_parameters() if "lora_" not in n) == 324_515_456
    assert sum(p.numel() for n, p in encoder.named_parameters() if "lora_" in n) == 4 * 65_536 * 24
    assert sum(p.numel() for p in encoder.hubert.feature_extractor.parameters()) == 11_712_000


def test_lora_adds_twice_its_delta_to_q_and_v_only(encoder):
    attention = encoder.hubert.encoder.layers[0].attention
    assert not hasattr(attention.k_proj, "lora_A") and not hasattr(attention.out_proj, "lora_A")
    torch.nn.init.normal_(attention.v_proj.lora_B["default"].weight)
    x = torch.randn(5, 64)
    down, up = attention.v_proj.lora_A["default"].weight, attention.v_proj.lora_B["default"].weight
    assert down.shape == (4, 64)  # 64 / 16
    torch.testing.assert_close(attention.v_proj(x), attention.v_proj.base_layer(x) + 2.0 * (x @ down.T @ up.T), atol=1e-5, rtol=1e-5)
