"""The Whisper encoder wrapper: 30-s log-mel, kept frames, batch equals one at a time, official key names."""

import torch

from omniavsr_cli.model.audio_encoder import AudioEncoder
from omniavsr_cli.model.config import WhisperEncoderConfig
from omniavsr_cli.model.transforms import standardise

TINY = WhisperEncoderConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64)


def test_batched_utterances_equal_each_alone_and_keep_the_requested_frames():
    torch.manual_seed(0)
    encoder = AudioEncoder(TINY, attn_implementation="eager").eval()
    long, short = standardise(torch.randn(24000)), standardise(torch.randn(9000))
    with torch.no_grad():
        together = encoder([long, short], [75, 28])
        alone = encoder([short], [28])
    assert together.shape == (2, 75, 32) and alone.shape == (1, 28, 32)
    torch.testing.assert_close(together[1, :28], alone[0], atol=1e-5, rtol=1e-5)


def test_log_mel_is_always_30_seconds():
    encoder = AudioEncoder(TINY)
    assert encoder.log_mel([torch.zeros(16000), torch.zeros(16000 * 40)]).shape == (2, 80, 3000)


def test_official_key_names_and_real_size():
    assert {"conv1.weight", "embed_positions.weight", "layers.1.self_attn.k_proj.weight", "layer_norm.bias"} <= set(
        AudioEncoder(TINY).encoder.state_dict()
    )
    assert "layers.0.self_attn.k_proj.bias" not in AudioEncoder(TINY).encoder.state_dict()
    with torch.device("meta"):
        encoder = AudioEncoder(WhisperEncoderConfig())
    assert sum(p.numel() for p in encoder.parameters()) == 307_216_384  # whisper-medium.en's encoder
