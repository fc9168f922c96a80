"""Omni-LoRA on peft: S, T and ST compute W·x + s·(B_t·A_t·x [+ B_s·A_s·x]) on Q and V, nothing elsewhere."""

import pytest
import torch

from omniavsr_cli.model.config import OmniAVSRConfig
from omniavsr_cli.model.llm import activate, adapter_names, build_llm

TINY_LLM = {
    "vocab_size": 300,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def tiny(variant: str) -> OmniAVSRConfig:
    tokens = {"bos": 250, "eos": 251, "pad": 295, "audio_start": 296, "audio_end": 297, "video_start": 298, "video_end": 299}
    return OmniAVSRConfig.from_dict({"variant": variant, "lora_reduction": 16, "lora_alpha": 4.0, "llm": TINY_LLM, "tokens": tokens})


def weights(layer, name):
    return layer.lora_A[name].weight, layer.lora_B[name].weight


@pytest.mark.parametrize("variant", ["S", "T", "ST"])
def test_each_task_applies_exactly_its_adapters(variant):
    torch.manual_seed(0)
    config = tiny(variant)
    llm = build_llm(config, attn_implementation="eager").eval()
    for name, parameter in llm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)  # peft starts B at zero; make every delta visible
    scaling = config.lora_scaling
    x = torch.randn(3, 64)
    for task, adapter in (("asr", "audio"), ("vsr", "video"), ("avsr", "audiovisual")):
        activate(llm, variant, task)
        for projection in ("q_proj", "v_proj"):
            layer = getattr(llm.model.layers[1].self_attn, projection)
            used = {"S": ["shared"], "T": [adapter], "ST": [adapter, "shared"]}[variant]
            expected = layer.base_layer(x) + scaling * sum(x @ a.T @ b.T for a, b in (weights(layer, n) for n in used))
            torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert not any("lora" in name for name, _ in llm.model.layers[0].mlp.named_parameters())
    assert not hasattr(llm.model.layers[0].self_attn.k_proj, "lora_A")


def test_shapes_follow_the_reduction_and_gqa():
    llm = build_llm(tiny("ST"))
    attention = llm.model.layers[0].self_attn
    assert attention.q_proj.lora_A["audio"].weight.shape == (4, 64)  # 64 / 16
    assert attention.v_proj.lora_B["shared"].weight.shape == (32, 4)  # 2 KV heads x head_dim 16
    assert attention.q_proj.scaling["video"] == pytest.approx(0.25)  # alpha / reduction


@pytest.mark.parametrize("variant, millions", [("S", 6_815_744), ("T", 3 * 6_815_744), ("ST", 4 * 6_815_744)])
def test_real_size_lora_parameter_counts(variant, millions):
    config = OmniAVSRConfig(variant=variant)
    with torch.device("meta"):
        llm = build_llm(config)
    lora = sum(p.numel() for name, p in llm.named_parameters() if "lora_" in name)
    assert lora == millions
    assert adapter_names(variant)[-1] == ("shared" if variant != "T" else "audiovisual")


@pytest.mark.parametrize("variant, trainable", [("S", 38_289_408), ("T", 51_920_896), ("ST", 58_736_640)])
def test_real_size_trainable_parameters_match_the_paper(variant, trainable):
    """S 38.29 M, T 51.92 M, ST 58.74 M (omni-avsr.md §4.4), with the frozen backbones at their sizes."""
    from omniavsr_cli.model.omni import OmniAVSR

    with torch.device("meta"):
        model = OmniAVSR(OmniAVSRConfig(variant=variant))
    assert model.trainable_parameters() == trainable
    frozen = lambda module: sum(p.numel() for p in module.parameters() if not p.requires_grad)  # noqa: E731
    assert frozen(model.audio_encoder) == 307_216_384
    assert frozen(model.video_encoder) == 324_515_456
    assert round(frozen(model.llm) / 1e9, 2) == 1.24  # Llama-3.2-1B with 5 added token rows
    assert sum(p.numel() for n, p in model.video_encoder.named_parameters() if "lora_" in n) == 6_291_456
