"""The model's input transforms, compression and configuration, against hand-computed values."""

import json

import numpy as np
import pytest
import torch

from omniavsr_cli.model import transforms
from omniavsr_cli.model.compression import RateProjectors, compress
from omniavsr_cli.model.config import OmniAVSRConfig


def test_video_input_crops_the_centre_88_then_greys_with_torchvisions_weights_then_normalises():
    frames = np.zeros((2, 96, 96, 3), np.uint8)
    frames[:, 4:92, 4:92] = (200, 100, 50)  # the centre 88x88 is one colour, the 4 px border another
    frames[1, 4, 4] = (255, 255, 255)
    video = transforms.video_input(frames)
    assert video.shape == (2, 1, 88, 88) and video.dtype == torch.float32
    grey = (0.2989 * 200 + 0.587 * 100 + 0.114 * 50) / 255
    assert video[0, 0, 10, 10].item() == pytest.approx((grey - 0.421) / 0.165, abs=1e-6)
    assert torch.all(video[0] == video[0, 0, 0, 0])  # the border is cut away
    white = 0.2989 + 0.587 + 0.114  # 0.9999, not 1
    assert video[1, 0, 0, 0].item() == pytest.approx((white - 0.421) / 0.165, abs=1e-6)


def test_standardise_is_zero_mean_unit_variance_over_the_whole_utterance_padding_included():
    speech = torch.linspace(-0.5, 1.0, 1000)
    padded = transforms.cut_or_pad(speech, 1600)
    assert padded.shape == (1600,) and torch.all(padded[1000:] == 0)
    out = transforms.standardise(padded)
    mean, var = padded.mean(), padded.var(unbiased=False)
    torch.testing.assert_close(out, (padded - mean) / torch.sqrt(var + 1e-8))
    assert transforms.cut_or_pad(speech, 640).shape == (640,)


@pytest.mark.parametrize(
    "samples, rule, frames",
    [
        (67840, "exact", 212),
        (67840, "float32", 211),
        (67840, "bf16", 211),
        (480000, "float32", 1500),
        (480000, "bf16", 1500),
        (960000, "exact", 1500),
        (6000, "exact", 25),
        (6000, "bf16", 25),
        (48123, "exact", 150),
    ],
)
def test_kept_whisper_frames_follow_the_official_arithmetic(samples, rule, frames):
    assert transforms.kept_audio_frames(samples, rule) == frames
    assert torch.get_default_dtype() == torch.float32  # restored


def test_average_pooling_drops_the_remainder_and_stack_concatenates():
    features = torch.arange(2 * 7 * 3, dtype=torch.float32).reshape(2, 7, 3)
    pooled = compress(features, 2)
    assert pooled.shape == (2, 3, 3)
    torch.testing.assert_close(pooled[0, 1], features[0, 2:4].mean(dim=0))
    stacked = compress(features, 3, "stack")
    assert stacked.shape == (2, 2, 9)
    torch.testing.assert_close(stacked[1, 1], features[1, 3:6].reshape(-1))


def test_one_projector_per_rate_with_the_official_module_indices():
    projectors = RateProjectors((4, 16), 8, 16, 12, "avg-pooling", layernorm=False)
    keys = set(projectors.projectors.state_dict())
    assert keys == {f"{i}.{j}.{p}" for i in (0, 1) for j in (0, 2) for p in ("weight", "bias")}
    assert projectors(torch.randn(1, 33, 8), 16).shape == (1, 2, 12)
    with pytest.raises(ValueError, match="rate 8"):
        projectors(torch.randn(1, 33, 8), 8)
    assert "0.3.weight" in RateProjectors((2,), 8, 16, 12, "avg-pooling", layernorm=True).projectors.state_dict()
    assert RateProjectors((2, 5), 8, 16, 12, "stack", layernorm=False).projectors[1][0].in_features == 40


def test_config_round_trips_through_config_json_and_rejects_unknown_keys(tmp_path):
    config = OmniAVSRConfig.from_dict({"variant": "T", "audio_rates": [4], "llm": {"hidden_size": 64, "num_hidden_layers": 2}})
    path = config.save(tmp_path)
    loaded = OmniAVSRConfig.load(tmp_path)
    assert loaded == config and loaded.audio_rates == (4,) and loaded.llm.hidden_size == 64 and loaded.lora_rank == 2
    assert OmniAVSRConfig().lora_rank == 64 and OmniAVSRConfig().lora_scaling == 0.125
    data = json.loads(path.read_text())
    data["rank"] = 32
    with pytest.raises(ValueError, match="unknown config keys: rank"):
        OmniAVSRConfig.from_dict(data)
    with pytest.raises(ValueError, match="variant"):
        OmniAVSRConfig(variant="X")
