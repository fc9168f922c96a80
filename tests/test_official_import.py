"""Importing a checkpoint in the official layout (built here from the key map, tiny shapes) and loading it back."""

import json
import re

import pytest
import torch
from helpers import run_cli
from test_model_forward import clip, tiny_config

from omniavsr_cli.model.loading import load_model, save_native
from omniavsr_cli.model.official import CheckpointError, convert, read_state_dict
from omniavsr_cli.model.omni import OmniAVSR

VIDEO = [
    (r"^feature_extractor\.", "feature_extractor_video."),
    (r"^feature_projection\.layer_norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"pos_conv_embed\.conv\.parametrizations\.weight\.original0", "pos_conv.0.weight_g"),
    (r"pos_conv_embed\.conv\.parametrizations\.weight\.original1", "pos_conv.0.weight_v"),
    (r"pos_conv_embed\.conv\.bias", "pos_conv.0.bias"),
    (r"\.attention\.([qv])_proj\.base_layer\.", r".self_attn.\1_proj."),
    (r"\.attention\.q_proj\.lora_A\.default\.", ".self_attn.lora_down_Q."),
    (r"\.attention\.q_proj\.lora_B\.default\.", ".self_attn.lora_up_Q."),
    (r"\.attention\.v_proj\.lora_A\.default\.", ".self_attn.lora_down_V."),
    (r"\.attention\.v_proj\.lora_B\.default\.", ".self_attn.lora_up_V."),
    (r"\.attention\.", ".self_attn."),
    (r"(layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
    (r"\.feed_forward\.intermediate_dense\.", ".fc1."),
    (r"\.feed_forward\.output_dense\.", ".fc2."),
]


def official_name(name: str, variant: str) -> str:
    """The released checkpoint's key for one of our names, written from the reference key list (omni-avsr.md §4.6)."""
    if name.startswith("audio_encoder.encoder."):
        return "audio_encoder." + name[len("audio_encoder.encoder.") :]
    if ".projectors." in name:
        return name.replace(".projectors.", ".")
    if name.startswith("video_encoder.hubert."):
        rest = name[len("video_encoder.hubert.") :]
        for pattern, replacement in VIDEO:
            rest = re.sub(pattern, replacement, rest)
        return "video_encoder." + rest
    lora = re.search(r"\.self_attn\.([qv])_proj\.lora_([AB])\.(\w+)\.weight$", name)
    if lora:
        projection, matrix, adapter = lora.groups()
        kind = "down" if matrix == "A" else "up"
        suffix = {"S": "", "T": f".{adapter}", "ST": "_shared" if adapter == "shared" else f".{adapter}"}[variant]
        return name[: lora.start()] + f".self_attn.lora_{kind}_{projection.upper()}{suffix}.weight"
    return name.replace(".base_layer.", ".")


def official_checkpoint(model: OmniAVSR, path, extra: dict | None = None):
    state = {
        official_name(k, model.config.variant): v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in model.state_dict().items()
    }
    state["video_encoder.mask_emb"] = torch.zeros(104)  # pretraining leftovers the released files carry
    state["video_encoder.final_proj.weight"] = torch.zeros(8, 32)
    state["video_encoder.feature_extractor_audio.proj.weight"] = torch.zeros(32, 104)
    state.update(extra or {})
    torch.save(state, path)
    return state


def random_model(variant: str) -> OmniAVSR:
    torch.manual_seed(3)
    model = OmniAVSR(tiny_config(variant), attn_implementation="eager").eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.3, 0.3)
    for task, ids in (("asr", [10, 11]), ("vsr", [12, 13, 14]), ("avsr", [15, 16, 17, 18])):
        model.set_prompt(task, ids)
    return model.to(torch.bfloat16).float()  # the released tensors are bf16


@pytest.mark.parametrize("variant", ["S", "T", "ST"])
def test_every_official_tensor_lands_where_it_belongs_and_the_logits_agree(variant, tmp_path):
    source = random_model(variant)
    official_checkpoint(source, tmp_path / "model_avg_1.pth")
    # The variant comes from the keys, whatever the config says.
    config, state = convert(read_state_dict(tmp_path / "model_avg_1.pth"), tiny_config("S"))
    assert config.variant == variant and not config.projector_layernorm
    save_native(tmp_path / "native", config, state)
    loaded = load_model(tmp_path / "native", device="cpu", attn_implementation="eager").module
    reference = source.state_dict()
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], atol=0, rtol=0, msg=name)
    assert loaded.llm.lm_head.weight.data_ptr() == loaded.llm.model.embed_tokens.weight.data_ptr()
    targets = [[20, 21, 22, 251]]
    with torch.no_grad():
        for task in ("asr", "vsr", "avsr"):
            torch.testing.assert_close(
                loaded.token_logprobs([clip(1.0, 9)], task, (4, 2), targets)[0],
                source.token_logprobs([clip(1.0, 9)], task, (4, 2), targets)[0],
                atol=1e-5,
                rtol=1e-5,
            )


def test_the_cli_imports_with_a_config_override_and_says_where(tmp_path):
    source = random_model("ST")
    official_checkpoint(source, tmp_path / "model_avg_1.pth")
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_config("ST").to_dict()))
    result = run_cli(
        "weights", "import-official", str(tmp_path / "model_avg_1.pth"), "--config", str(tmp_path / "tiny.json"), "-o", str(tmp_path / "m")
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "variant ST" in result.stdout.decode()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["variant"] == "ST"
    assert (tmp_path / "m" / "model.safetensors").stat().st_size > 0
    verified = run_cli("weights", "verify", str(tmp_path / "m"))
    assert verified.returncode == 0 and "ok" in verified.stdout.decode()


def test_bad_checkpoints_are_clear_errors(tmp_path):
    source = random_model("T")
    state = official_checkpoint(source, tmp_path / "good.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((tmp_path / "good.pth").read_bytes()[:5000])
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"x": torch.zeros(2)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    for unusable in (truncated, tmp_path / "empty.pth", tmp_path / "legacy.pth"):
        with pytest.raises(CheckpointError, match="not a PyTorch zip checkpoint .*download the released") as error:
            read_state_dict(unusable)
        assert "mmap" not in str(error.value)

    missing = dict(state)
    del missing["video_encoder.encoder.layers.0.fc1.weight"]
    missing["llm.model.extra.weight"] = torch.zeros(1)
    missing["audio_proj.0.0.weight"] = torch.zeros(3, 3)
    torch.save(missing, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError) as error:
        convert(read_state_dict(tmp_path / "broken.pth"), tiny_config())
    message = str(error.value)
    assert "1 missing: video_encoder.hubert.encoder.layers.0.feed_forward.intermediate_dense.weight" in message
    assert "1 unexpected: llm.model.extra.weight" in message and "wrong shape: audio_proj.projectors.0.0.weight (3, 3)" in message

    with pytest.raises(CheckpointError, match="not an Omni-AVSR checkpoint"):
        convert({"encoder.weight": torch.zeros(2)}, tiny_config())
    with pytest.raises(CheckpointError, match="audio projectors"):
        convert({k: v for k, v in state.items() if not k.startswith("audio_proj.1.")}, tiny_config())

    class Exploit:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="pickled Python objects .*refused, never run") as error:
        read_state_dict(tmp_path / "evil.pth")
    assert "weights_only" not in str(error.value)  # torch's advice to load it unrestricted would run the payload
    result = run_cli("weights", "import-official", str(truncated), "-o", str(tmp_path / "x"))
    assert result.returncode == 5 and result.stderr.decode().count("\n") == 1


def tiny_tokenizer(directory):
    """A word-level tokenizer whose special tokens sit at the tiny config's ids, saved as the Llama one is."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["hello", "world", "lips", "move", "transcribe", "speech", "video", "and", "to", "text."]
    vocab = {word: i for i, word in enumerate(words)} | {f"w{i}": i for i in range(len(words), 250)}
    vocab |= {
        "<|begin_of_text|>": 250,
        "<|end_of_text|>": 251,
        "<pad>": 295,
        "<audio>": 296,
        "</audio>": 297,
        "<video>": 298,
        "</video>": 299,
    }
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="w249"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<pad>",
        additional_special_tokens=["<audio>", "</audio>", "<video>", "</video>"],
    )
    fast.save_pretrained(directory)
    return fast


def test_text_in_and_out_through_the_imported_tokenizer(tmp_path):
    source = random_model("ST")
    official_checkpoint(source, tmp_path / "model_avg_1.pth")
    tiny_tokenizer(tmp_path / "tok")
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_config("ST").to_dict()))
    result = run_cli(
        "weights",
        "import-official",
        str(tmp_path / "model_avg_1.pth"),
        "--config",
        str(tmp_path / "tiny.json"),
        "--tokenizer",
        str(tmp_path / "tok"),
        "-o",
        str(tmp_path / "m"),
    )
    assert result.returncode == 0, result.stderr.decode()
    from omniavsr_cli.decoding import DecodingOptions
    from omniavsr_cli.model.loading import load_model

    model = load_model(tmp_path / "m", attn_implementation="eager")
    with torch.no_grad():
        scores = model.transcript_logprobs([clip(1.0, 1)], "vsr", (4, 2), ["hello world"])[0]
        expected = model.module.token_logprobs([clip(1.0, 1)], "vsr", (4, 2), [[0, 1, 251]])[0]
        ids = model.module.generate([clip(1.0, 2)], "asr", (4, 2), DecodingOptions(num_beams=2, max_new_tokens=3))[0]
        [text] = model.generate_text([clip(1.0, 2)], "asr", (4, 2), DecodingOptions(num_beams=2, max_new_tokens=3))
    torch.testing.assert_close(scores, expected)
    assert text == model.tokenizer.decode(ids, skip_special_tokens=True)
    assert "<audio>" not in text and "<pad>" not in text
