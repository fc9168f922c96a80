"""The assembled model on tiny random weights: the LLM input layout, and batched equals one clip at a time."""

import pytest
import torch

from omniavsr_cli.model.config import OmniAVSRConfig
from omniavsr_cli.model.omni import Clip, OmniAVSR
from omniavsr_cli.model.random_init import small_config

TOKENS = {"bos": 250, "eos": 251, "pad": 295, "audio_start": 296, "audio_end": 297, "video_start": 298, "video_end": 299}


def tiny_config(variant="ST") -> OmniAVSRConfig:
    """The few-MB model of random_init (special tokens at TOKENS), in the given LoRA variant."""
    return OmniAVSRConfig.from_dict({**small_config().to_dict(), "variant": variant})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = OmniAVSR(tiny_config(), attn_implementation="eager").eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)
    for task, ids in (("asr", [10, 11, 12]), ("vsr", [13, 14, 15]), ("avsr", [16, 17, 18, 19])):
        model.set_prompt(task, ids)
    return model


def clip(seconds: float, seed: int) -> Clip:
    generator = torch.Generator().manual_seed(seed)
    frames = int(seconds * 25)
    return Clip(
        audio=torch.randn(int(seconds * 16000), generator=generator) * 0.1, video=torch.randn(frames, 1, 88, 88, generator=generator)
    )


def test_the_llm_input_is_bos_audio_block_video_block_prompt(model):
    with torch.no_grad():
        [prefix] = model.prefix_embeddings([clip(1.0, 0)], "avsr", (4, 2))
    # 1 s: 50 Whisper frames -> 12 tokens at rate 4; 25 video frames -> 12 tokens at rate 2; prompt 4 tokens.
    assert prefix.shape == (1 + (1 + 12 + 1) + (1 + 12 + 1) + 4, 64)
    table = model.llm.get_input_embeddings().weight
    for position, token in (
        (0, TOKENS["bos"]),
        (1, TOKENS["audio_start"]),
        (14, TOKENS["audio_end"]),
        (15, TOKENS["video_start"]),
        (28, TOKENS["video_end"]),
    ):
        torch.testing.assert_close(prefix[position], table[token])
    torch.testing.assert_close(prefix[-4:], model.prompt_audiovisual[0])
    with torch.no_grad():
        [asr] = model.prefix_embeddings([clip(1.0, 0)], "asr", (16, 2))
        [vsr] = model.prefix_embeddings([clip(1.0, 0)], "vsr", (4, 5))
    assert len(asr) == 1 + (1 + 3 + 1) + 3 and len(vsr) == 1 + (1 + 5 + 1) + 3


@pytest.mark.parametrize("task", ["asr", "vsr", "avsr"])
def test_a_batch_scores_like_one_clip_at_a_time(model, task):
    clips = [clip(1.6, 1), clip(0.8, 2), clip(1.2, 3)]
    targets = [[20, 21, 22, 251], [23, 251], [24, 25, 26, 27, 251]]
    with torch.no_grad():
        together = model.token_logprobs(clips, task, (4, 2), targets)
        alone = [model.token_logprobs([c], task, (4, 2), [t])[0] for c, t in zip(clips, targets)]
    for batched, single, target in zip(together, alone, targets):
        assert batched.shape == (len(target),) and torch.all(batched <= 0)
        torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)


def test_tasks_use_different_adapters(model):
    targets = [[20, 21, 251]]
    with torch.no_grad():
        one = model.token_logprobs([clip(1.0, 4)], "avsr", (4, 2), targets)[0]
        model.llm.model.layers[0].self_attn.q_proj.lora_B["audiovisual"].weight.mul_(3)
        changed = model.token_logprobs([clip(1.0, 4)], "avsr", (4, 2), targets)[0]
        other_task = model.token_logprobs([clip(1.0, 4)], "asr", (4, 2), targets)[0]
        model.llm.model.layers[0].self_attn.q_proj.lora_B["audiovisual"].weight.div_(3)
        asr_again = model.token_logprobs([clip(1.0, 4)], "asr", (4, 2), targets)[0]
    assert (one - changed).abs().max() > 1e-4  # the AVSR adapter acts on AVSR
    torch.testing.assert_close(other_task, asr_again)  # and not on ASR


@pytest.mark.parametrize("task", ["asr", "vsr", "avsr"])
def test_beam_search_in_a_batch_gives_the_tokens_of_one_clip_at_a_time(model, task):
    from omniavsr_cli.decoding import DecodingOptions

    options = DecodingOptions(num_beams=4, max_new_tokens=6)
    clips = [clip(1.6, 5), clip(0.8, 6)]
    with torch.no_grad():
        together = model.generate(clips, task, (4, 2), options)
        alone = [model.generate([c], task, (4, 2), options)[0] for c in clips]
    assert together == alone
    assert all(len(ids) <= 6 and TOKENS["eos"] not in ids for ids in together)


def test_sampling_is_reproducible_with_a_seed(model):
    from omniavsr_cli.decoding import DecodingOptions

    options = DecodingOptions(num_beams=3, sample=True, seed=11, max_new_tokens=5)
    with torch.no_grad():
        first = model.generate([clip(1.0, 8)], "vsr", (4, 5), options)
        second = model.generate([clip(1.0, 8)], "vsr", (4, 5), options)
    assert first == second
    assert DecodingOptions().max_new_tokens_for(2.0) == 32 and DecodingOptions().max_new_tokens_for(20.0) == 160


def test_a_mixed_task_batch_equals_single_task_batches(model):
    from omniavsr_cli.decoding import DecodingOptions

    clips = [clip(1.2, 10), clip(0.8, 11), clip(1.0, 12), clip(1.4, 13)]
    tasks = ["vsr", "asr", "avsr", "asr"]
    targets = [[20, 251], [21, 22, 251], [23, 251], [24, 25, 26, 251]]
    options = DecodingOptions(num_beams=3, max_new_tokens=4)
    with torch.no_grad():
        mixed_scores = model.token_logprobs(clips, tasks, (4, 2), targets)
        mixed_ids = model.generate(clips, tasks, (4, 2), options)
        for i, task in enumerate(tasks):
            torch.testing.assert_close(
                mixed_scores[i], model.token_logprobs([clips[i]], task, (4, 2), [targets[i]])[0], atol=1e-4, rtol=1e-4
            )
            assert mixed_ids[i] == model.generate([clips[i]], task, (4, 2), options)[0]


def test_raw_numpy_arrays_from_the_media_front_end_are_accepted(model):
    import numpy as np

    from omniavsr_cli.model.transforms import video_input

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (25, 96, 96, 3), dtype=np.uint8)
    audio = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    from_numpy = Clip(audio=audio, video=video_input(crops).numpy())
    from_torch = Clip(audio=torch.from_numpy(audio), video=video_input(crops))
    with torch.no_grad():
        torch.testing.assert_close(
            model.token_logprobs([from_numpy], "avsr", (4, 2), [[20, 251]])[0],
            model.token_logprobs([from_torch], "avsr", (4, 2), [[20, 251]])[0],
        )


def test_a_bf16_model_sees_the_waveform_rounded_to_bf16_as_upstream(monkeypatch):
    from omniavsr_cli.model import transforms

    torch.manual_seed(0)
    model = OmniAVSR(tiny_config("S")).to(torch.bfloat16).eval()
    seen = []
    original = model.audio_encoder.log_mel
    monkeypatch.setattr(model.audio_encoder, "log_mel", lambda waves: seen.extend(waves) or original(waves))
    audio = torch.randn(16000) * 0.1
    with torch.no_grad():
        model.prefix_embeddings([Clip(audio=audio)], "asr", (4, 2))
    expected = transforms.standardise(audio).to(torch.bfloat16).float()
    assert torch.equal(seen[0], expected) and not torch.equal(seen[0], transforms.standardise(audio))


def test_the_audio_window_is_the_configs_and_transcribe_never_exceeds_it():
    from omniavsr_cli.model.random_init import random_model
    from omniavsr_cli.transcribe import Pipeline, TranscribeOptions

    values = small_config().to_dict()
    short = random_model(OmniAVSRConfig.from_dict({**values, "whisper": {**values["whisper"], "max_source_positions": 300}}))
    assert short.config.whisper.window_seconds == 6
    assert short.module.audio_encoder.log_mel([torch.zeros(32000)]).shape[-1] == 600  # padded to 6 s of 100 Hz mel frames
    assert short.module.kept_audio_frames(16000 * 4) == 200 and short.module.kept_audio_frames(16000 * 10) == 300
    with torch.no_grad():
        features = short.module.audio_encoder([torch.randn(16000 * 4)], [200])
    assert features.shape[:2] == (1, 200)
    assert Pipeline(short, TranscribeOptions(max_chunk_s=16.0)).options.max_chunk_s == 6.0
    released = random_model(small_config())  # 1500 positions: the 30-s window, and the 16-s default stands
    assert released.module.audio_encoder.log_mel([torch.zeros(32000)]).shape[-1] == 3000
    assert Pipeline(released, TranscribeOptions(max_chunk_s=16.0)).options.max_chunk_s == 16.0
    with pytest.raises(ValueError, match="whole seconds"):
        OmniAVSRConfig.from_dict({**values, "whisper": {**values["whisper"], "max_source_positions": 320}})
