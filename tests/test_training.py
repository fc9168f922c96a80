"""Training: the official objective (rates, adapters, weights, labels), the trainable set, checkpoints that
load as models, resume equal to an uninterrupted run, bad clips skipped, and learnability from scratch."""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from synthetic import TRANSCRIPTS, clip_audio, clip_frames, write_dataset
from typer.testing import CliRunner

from omniavsr_cli.cli import _errors, app
from omniavsr_cli.decoding import DecodingOptions
from omniavsr_cli.errors import InputError, ModelUnavailable, UsageError
from omniavsr_cli.model import loading
from omniavsr_cli.model.config import OmniAVSRConfig
from omniavsr_cli.model.loading import LoadedModel, load_model
from omniavsr_cli.model.omni import Clip
from omniavsr_cli.model.random_init import random_model, save_random_model, small_config
from omniavsr_cli.model.transforms import video_input
from omniavsr_cli.training import checkpoints, trainer
from omniavsr_cli.training.augment import Augmentation
from omniavsr_cli.training.batches import pad_batch
from omniavsr_cli.training.data import load_example, read_manifest
from omniavsr_cli.training.recipe import draw_rates, weighted_loss
from omniavsr_cli.training.trainer import TrainOptions, train

TASK_ADAPTERS = {
    "S": {t: {"shared"} for t in ("asr", "vsr", "avsr")},
    "T": {"asr": {"audio"}, "vsr": {"video"}, "avsr": {"audiovisual"}},
    "ST": {"asr": {"audio", "shared"}, "vsr": {"video", "shared"}, "avsr": {"audiovisual", "shared"}},
}


def config(variant="ST", dropout=0.1) -> OmniAVSRConfig:
    values = small_config().to_dict()
    values["variant"] = variant
    # Whisper encodes its whole window whatever the clip's length: 2 s holds these 1-s clips at a 15th of 30 s's cost.
    values["whisper"] |= {"max_source_positions": 100}
    values["avhubert"] |= {"dropout": dropout, "layerdrop": dropout / 2}
    return OmniAVSRConfig.from_dict(values)


def batch(model: LoadedModel, clips=2):
    """A padded training batch of synthetic clips, with transcripts of different lengths."""
    texts = [TRANSCRIPTS[i] for i in range(clips)]
    texts[0] += " the"
    audios = [torch.nn.functional.layer_norm(torch.from_numpy(clip_audio(i, 1.0)), (16000,)) for i in range(clips)]
    videos = [video_input(clip_frames(i, 25)) for i in range(clips)]
    ids = [[model.config.tokens.bos, *model.tokenizer(t, add_special_tokens=False).input_ids, model.config.tokens.eos] for t in texts]
    return pad_batch(audios, videos, ids, model.config.tokens.pad)


def test_rates_are_drawn_uniformly_per_batch_and_the_same_in_every_process():
    draws = [draw_rates((4, 16), (2, 5), 7, epoch=0, position=p) for p in range(4000)]
    assert {d for d in draws} == {(4, 2), (4, 5), (16, 2), (16, 5)}
    for index, rate in ((0, 4), (1, 2)):
        share = sum(d[index] == rate for d in draws) / len(draws)
        assert 0.47 < share < 0.53
    # seeded by the batch's place only: a resumed run and every process draw the same
    assert draws[:50] == [draw_rates((4, 16), (2, 5), 7, 0, p) for p in range(50)]
    assert draws[:50] != [draw_rates((4, 16), (2, 5), 8, 0, p) for p in range(50)]


def test_one_step_uses_the_drawn_rate_projectors_and_shares_the_rates_between_tasks():
    loaded = random_model(config())
    model, inputs = loaded.module.train(), batch(loaded)
    losses = model(inputs["audio"], inputs["video"], inputs["text"], (16, 2))
    for task in ("asr", "vsr", "avsr"):
        model.zero_grad()
        losses[task].backward(retain_graph=True)
        audio_used = [p.grad is not None and bool(p.grad.abs().sum()) for p in model.audio_proj.projectors.parameters()]
        video_used = [p.grad is not None and bool(p.grad.abs().sum()) for p in model.video_proj.projectors.parameters()]
        half_a, half_v = len(audio_used) // 2, len(video_used) // 2
        # audio rate 16 is the second projector, video rate 2 the first; ASR sees no video, VSR no audio
        assert audio_used == ([False] * half_a + [task != "vsr"] * half_a)
        assert video_used == ([task != "asr"] * half_v + [False] * half_v)


@pytest.mark.parametrize("variant", ["S", "T", "ST"])
def test_each_task_pass_trains_only_its_own_adapters(variant):
    loaded = random_model(config(variant))
    model, inputs = loaded.module.train(), batch(loaded)
    model.freeze_backbones()
    losses = model(inputs["audio"], inputs["video"], inputs["text"], (4, 2))
    for task, expected in TASK_ADAPTERS[variant].items():
        model.zero_grad()
        losses[task].backward(retain_graph=True)
        trained = {
            name.split("lora_")[1].split(".")[1]
            for name, p in model.llm.named_parameters()
            if "lora_" in name and p.grad is not None and p.grad.abs().sum() > 0
        }
        assert trained == expected, task
    # switching adapters between the passes does not change what is trainable
    assert all(p.requires_grad for name, p in model.llm.named_parameters() if "lora_" in name)


def test_the_loss_covers_the_transcript_and_eos_only_and_matches_teacher_forced_scoring():
    loaded = random_model(config(dropout=0.0))
    model, inputs = loaded.module.eval(), batch(loaded)
    with torch.no_grad():
        losses = model(inputs["audio"][:1], inputs["video"][:1], inputs["text"][:1], (4, 2))
        clip = Clip(audio=clip_audio(0, 1.0), video=video_input(clip_frames(0, 25)))
        for task in ("asr", "vsr", "avsr"):
            [scores] = loaded.transcript_logprobs([clip], task, (4, 2), [TRANSCRIPTS[0] + " the"])
            assert len(scores) == 5  # 4 words and EOS
            assert torch.allclose(losses[task], -scores.mean(), atol=1e-5), task
        # padding rows of the text do not count: the short row's loss is the same alone or padded
        padded = model(inputs["audio"][1:], inputs["video"][1:], inputs["text"][1:], (4, 2))
        trimmed = inputs["text"][1:, : int((inputs["text"][1] != model.config.tokens.pad).sum())]
        alone = model(inputs["audio"][1:], inputs["video"][1:], trimmed, (4, 2))
        assert all(torch.allclose(padded[t], alone[t], atol=1e-6) for t in padded)


def test_loss_weighting_is_the_official_formula_and_a_zero_weight_task_trains_nothing():
    losses = {"asr": torch.tensor(2.0), "vsr": torch.tensor(4.0), "avsr": torch.tensor(1.0)}
    assert float(weighted_loss(losses, (1.0, 1.5, 1.0))) == pytest.approx((2 + 6 + 1) / 3)
    assert float(weighted_loss(losses, (0.0, 1.0, 0.0))) == pytest.approx(4 / 3)


def test_an_asr_only_run_never_runs_the_video_encoder_and_trains_only_the_rates_asked(data, base, tmp_path):
    result = train(options(data, base, tmp_path / "run", max_steps=2, task_weights=(1.0, 0.0, 0.0), rates=((16,), (2,))))
    before, after = load_model(base).module, load_model(result.model).module
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert all("loss_asr" in record and "loss_vsr" not in record and "loss_avsr" not in record for record in log)
    old = dict(before.named_parameters())
    video = [n for n, _ in after.named_parameters() if n.startswith("video_") or ".video." in n or ".audiovisual." in n]
    assert video and all(torch.equal(p, old[n]) for n, p in after.named_parameters() if n in video)
    # not even the BatchNorm statistics moved: the encoder did not run
    assert torch.equal(
        after.video_encoder.hubert.feature_extractor.resnet.frontend3D[1].running_mean,
        before.video_encoder.hubert.feature_extractor.resnet.frontend3D[1].running_mean,
    )
    assert any(not torch.equal(p, old[n]) for n, p in after.named_parameters() if n.startswith("audio_proj.projectors.1"))
    assert all(torch.equal(p, old[n]) for n, p in after.named_parameters() if n.startswith("audio_proj.projectors.0"))  # rate 4


def test_only_lora_and_projectors_train_unless_backbones_are_unfrozen():
    model = random_model(config()).module
    model.freeze_backbones()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith(("audio_proj.", "video_proj.")) for n in trainable)
    assert any(n.startswith("video_encoder.") for n in trainable)  # the AV-HuBERT LoRA
    assert not any(n.startswith("audio_encoder.") for n in trainable)
    model.freeze_backbones(("llm", "audio-encoder"))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("video_encoder.") and "lora_" not in n for n in frozen)
    with pytest.raises(ValueError, match="choose from"):
        model.freeze_backbones(("whisper",))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return write_dataset(root)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("base") / "tiny", config("T"))


def options(data, base, output, **overrides):
    values = dict(manifest=data, output=output, model=str(base), max_steps=4, max_frames=50, workers=0, save_every=2)
    return TrainOptions(**(values | overrides))


def test_a_step_changes_the_trainable_tensors_only_and_checkpoints_hold_just_those(data, base, tmp_path):
    result = train(options(data, base, tmp_path / "run", max_steps=2, task_weights=(1.0, 0.0, 1.0)))
    before, after = load_model(base).module, load_model(result.model).module
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, dict(before.named_parameters())[n])}
    trainable = {n for n, p in after.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    # VSR's weight is 0, so its pass does not run and T's VSR adapter gets no gradient: AdamW leaves it as it was
    old = dict(before.named_parameters())
    vsr = [n for n in trainable if ".video." in n]
    assert vsr and all(torch.equal(dict(after.named_parameters())[n], old[n]) for n in vsr)
    assert all(n in changed for n in trainable if ".audio." in n or ".audiovisual." in n)
    stored = load_file(str(tmp_path / "run" / "checkpoint-0000002" / "model.safetensors"))
    expected = trainable | {n for n, _ in after.named_buffers() if "running_" in n or "num_batches" in n}
    expected |= {"prompt_audio", "prompt_video", "prompt_audiovisual", checkpoints.ADDED_ROWS, checkpoints.ADDED_IDS}
    assert set(stored) == expected
    # the BatchNorm statistics of the video encoder moved (it trains in train mode, as upstream)
    assert not torch.equal(
        after.video_encoder.hubert.feature_extractor.resnet.frontend3D[1].running_mean,
        before.video_encoder.hubert.feature_extractor.resnet.frontend3D[1].running_mean,
    )
    state = torch.load(tmp_path / "run" / "checkpoint-0000002" / "training.pt", weights_only=True)
    assert state["step"] == 2 and len(state["optimizer"]["param_groups"][0]["params"]) == len(trainable)
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert {"loss_asr", "loss_avsr", "lr", "tokens_per_s", "memory_gb"} <= set(records[0]) and "loss_vsr" not in records[0]
    assert records[0]["lr"] == pytest.approx(1e-3) and records[1]["lr"] == pytest.approx(0.5e-3)  # cosine over 2 steps


def test_resuming_a_killed_run_ends_with_the_same_weights(data, base, tmp_path):
    settings = dict(max_steps=5, augmentation=Augmentation(), accumulate=2)
    whole = train(options(data, base, tmp_path / "whole", **settings))

    def crash(step, total, record):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(options(data, base, tmp_path / "resumed", **settings), on_step=crash)
    assert [p.name for p in checkpoints.step_checkpoints(tmp_path / "resumed")] == ["checkpoint-0000002"]
    resumed = train(options(data, base, tmp_path / "resumed", **settings))
    assert resumed.resumed_from == 2 and resumed.steps == 5
    first, second = load_file(str(whole.model / "model.safetensors")), load_file(str(resumed.model / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    log = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4, 5]  # the steps after the checkpoint were logged again, not twice
    with pytest.raises(Exception, match="other settings .*lr"):
        train(options(data, base, tmp_path / "resumed", **settings, lr=0.1))


class _Payload:
    """A pickle that creates ``marker`` when it is unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_resuming_never_runs_code_pickled_into_a_checkpoint(data, base, tmp_path):
    arguments = [
        "train",
        str(data),
        "-o",
        str(tmp_path / "run"),
        "--model",
        str(base),
        "--max-steps",
        "2",
        "--save-every",
        "2",
        "--max-frames",
        "50",
        "--workers",
        "0",
    ]
    assert CliRunner().invoke(app, arguments).exit_code == 0
    [checkpoint] = checkpoints.step_checkpoints(tmp_path / "run")
    state = torch.load(checkpoint / checkpoints.TRAINING_STATE, weights_only=True)  # what train writes loads safely
    marker = tmp_path / "payload-ran"
    torch.save(state | {"settings": _Payload(marker)}, checkpoint / checkpoints.TRAINING_STATE)
    result = CliRunner().invoke(app, arguments)
    assert not marker.exists()
    assert result.exit_code == 5 and result.stderr.count("\n") == 1, result.output
    assert (
        f"{checkpoint}: training.pt is damaged or holds more than tensors" in result.stderr
        and "delete that checkpoint directory" in result.stderr
    )
    (checkpoint / checkpoints.TRAINING_STATE).write_bytes(b"PK\x03\x04 truncated")
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 5 and result.stderr.count("\n") == 1 and "training.pt is unreadable" in result.stderr, result.output


def test_a_run_from_the_clip_cache_trains_the_same_weights_as_one_that_decodes(data, base, tmp_path):
    decoded = train(options(data, base, tmp_path / "decoded", max_steps=2))
    filling = train(options(data, base, tmp_path / "filling", max_steps=2, cache=tmp_path / "cache"))
    stored = sorted(p.name for p in (tmp_path / "cache").glob("*.npz"))
    from_cache = train(options(data, base, tmp_path / "from-cache", max_steps=2, cache=tmp_path / "cache"))
    assert stored and sorted(p.name for p in (tmp_path / "cache").glob("*.npz")) == stored
    weights = [load_file(str(result.model / "model.safetensors")) for result in (decoded, filling, from_cache)]
    assert all(w.keys() == weights[0].keys() and all(torch.equal(w[k], weights[0][k]) for k in w) for w in weights[1:])


def test_averaging_the_last_checkpoints(data, base, tmp_path):
    result = train(options(data, base, tmp_path / "run", average_last=2, keep_last=1, partial_model=True))
    kept = checkpoints.step_checkpoints(tmp_path / "run")
    assert [p.name for p in kept] == ["checkpoint-0000002", "checkpoint-0000004"]
    a, b = (load_file(str(p / "model.safetensors")) for p in kept)
    average = load_file(str(result.model / "model.safetensors"))
    name = next(n for n in average if "lora_A" in n)
    assert torch.allclose(average[name], (a[name] + b[name]) / 2)
    assert torch.equal(average[checkpoints.ADDED_IDS], a[checkpoints.ADDED_IDS])


def _metadata(directory) -> dict:
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="pt") as handle:
        return handle.metadata()


def test_the_final_model_is_complete_and_checkpoints_name_their_base_relatively(data, base, tmp_path):
    """A run's checkpoints name a base directory by its path relative to themselves (plus its checksum), so
    the run and its base copied anywhere together still load; the final model needs nothing else at all."""
    work = tmp_path / "work"
    shutil.copytree(base, work / "init")
    result = train(options(data, work / "init", work / "runs" / "one", max_steps=2))
    [checkpoint] = checkpoints.step_checkpoints(work / "runs" / "one")
    meta = _metadata(checkpoint)
    assert meta[loading.BASE_KEY] == "../../../init"
    assert meta[loading.BASE_SHA256_KEY] == json.loads((work / "init" / "checksums.json").read_text())["model.safetensors"]
    assert loading.BASE_KEY not in _metadata(result.model)
    expected = loading.load_state(checkpoint)
    assert set(load_file(str(result.model / "model.safetensors"))) == set(expected)  # every tensor, not the changed ones

    moved = tmp_path / "elsewhere"
    shutil.move(work, moved)
    moved_checkpoint = moved / "runs" / "one" / checkpoint.name
    state = loading.load_state(moved_checkpoint)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    shutil.rmtree(moved / "init")
    load_model(moved / "runs" / "one" / "model")  # the complete final model loads without its base
    with pytest.raises(
        loading.OmniAVSRError, match=r"base model \.\./\.\./\.\./init \(weights sha256 [0-9a-f]{12}\) is missing"
    ) as missing:
        load_model(moved_checkpoint)
    assert isinstance(missing.value, ModelUnavailable) and "omniavsr weights merge" in _errors.message(missing.value)


def test_a_base_that_is_not_the_one_trained_from_is_refused(data, base, tmp_path):
    shutil.copytree(base, tmp_path / "init")
    train(options(data, tmp_path / "init", tmp_path / "run", max_steps=2))
    save_random_model(tmp_path / "init", config("T"), seed=99)  # another model where the base was
    [checkpoint] = checkpoints.step_checkpoints(tmp_path / "run")
    with pytest.raises(loading.OmniAVSRError, match="is not its base model .*weights differ"):
        load_model(checkpoint)


def test_an_installed_base_is_named_by_its_name(data, base, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIAVSR_WEIGHTS", str(tmp_path / "weights"))
    shutil.copytree(base, tmp_path / "weights" / "tiny-t")
    train(options(data, "tiny-t", tmp_path / "run", max_steps=2, partial_model=True))
    assert _metadata(tmp_path / "run" / "model")[loading.BASE_KEY] == "tiny-t"
    load_model(tmp_path / "run" / "model")


def test_weights_merge_flattens_a_partial_model_into_one_that_loads_alone(data, base, tmp_path):
    shutil.copytree(base, tmp_path / "init")
    train(options(data, tmp_path / "init", tmp_path / "run", max_steps=2, partial_model=True))
    partial = tmp_path / "run" / "model"
    expected = loading.load_state(partial)
    shutil.move(tmp_path / "init", tmp_path / "moved-init")  # the base is not where the checkpoint names it
    cli = CliRunner()
    result = cli.invoke(app, ["weights", "merge", str(partial), "-o", str(tmp_path / "merged")])
    assert result.exit_code == 5 and "is missing" in result.output
    result = cli.invoke(app, ["weights", "merge", str(partial), "--base", str(tmp_path / "moved-init"), "-o", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    shutil.rmtree(tmp_path / "moved-init")
    merged = load_file(str(tmp_path / "merged" / "model.safetensors"))
    assert merged.keys() == expected.keys() and all(torch.equal(merged[k], expected[k]) for k in merged)
    assert loading.BASE_KEY not in _metadata(tmp_path / "merged")
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    load_model(tmp_path / "merged")
    result = cli.invoke(app, ["weights", "merge", str(partial), "--base", str(tmp_path / "merged"), "-o", str(tmp_path / "merged")])
    assert result.exit_code == 2 and "already exists" in result.output


def test_bad_clips_are_skipped_with_a_reason_and_training_goes_on(data, base, tmp_path, caplog):
    manifest = tmp_path / "rois" / "manifest.csv"
    manifest.parent.mkdir()
    (tmp_path / "rois" / "spk").symlink_to(data.parent / "spk")
    broken = tmp_path / "rois" / "spk2"
    broken.mkdir()
    (broken / "bad.mp4").write_bytes(b"not a video")
    (broken / "bad.wav").write_bytes(b"not audio")
    lines = data.read_text().splitlines() + ["rois,spk2/bad.mp4,25,,broken clip", "rois,spk2/gone.mp4,25,,missing clip"]
    manifest.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="omniavsr"):
        result = train(options(manifest, base, tmp_path / "run", max_steps=4, max_frames=75))  # two epochs of two batches
    # The bad clip is met in both epochs but is one clip skipped, reported once.
    assert result.steps == 4 and result.skipped == 2
    assert sum("rois/spk2/bad" in message for message in caplog.messages) == 1
    reasons = (tmp_path / "run" / "skipped.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in reasons] == ["rois/spk2/gone", "rois/spk2/bad"] and "missing file" in reasons[0]


def test_when_no_clip_can_be_trained_on_the_error_gives_the_reasons(data, base, tmp_path, monkeypatch):
    manifest = tmp_path / "rois" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("".join(f"rois,spk/gone{number}.mp4,25,,text\n" for number in range(5)))
    monkeypatch.setattr(trainer, "load_model", _never_loaded)
    with pytest.raises(InputError) as error:
        train(options(manifest, base, tmp_path / "run"))
    message = str(error.value)
    assert "none of its clips can be trained on (rois/spk/gone0: missing file " in message and message.endswith("; and 2 more)")
    assert "skipped.tsv" not in message


def _never_loaded(*args, **kwargs):
    raise AssertionError("the model was loaded before the arguments were checked")


def test_a_run_directory_that_cannot_be_made_is_refused_before_the_model_loads(data, base, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "load_model", _never_loaded)
    monkeypatch.setattr(trainer, "read_manifest", _never_loaded)
    (tmp_path / "afile").write_text("x")
    outputs = [tmp_path / "afile" / "sub"] + [Path(system) / "x" for system in ("/proc", "/sys") if Path(system).is_dir()]
    for output in outputs:
        result = CliRunner().invoke(app, ["train", str(data), "-o", str(output), "--model", str(base)])
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert f"--output {output}: cannot make this directory (" in result.stderr and "choose another" in result.stderr


def test_the_train_summary_names_the_real_skipped_file(data, tmp_path, monkeypatch):
    def finished(options, on_step=None):
        return trainer.TrainResult(1, Path(options.output) / "model", {"asr": 1.0}, 1)

    monkeypatch.setattr(trainer, "train", finished)
    result = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0 and f"1 examples skipped ({tmp_path / 'run' / 'skipped.tsv'})" in result.stderr


def test_train_cli_rejects_bad_arguments_in_one_line(data, base, tmp_path):
    runner = CliRunner()
    cases = [
        (["train", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o"), "--model", str(base)], "no such manifest"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--task-weights", "1,2"], "3 comma-separated"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--unfreeze", "whisper"], "choose from"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")], "no such model"),
        (
            ["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--task-weights", "0,0,0"],
            "--task-weights 0.0,0.0,0.0: give three weights (ASR,VSR,AVSR), none negative, at least one above 0",
        ),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--rates", "4"], "split by '/'"),
        (
            ["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--rates", "4,8/2"],
            "omniavsr: error: --rates: audio rate 8 is not one of this model's (4,16)",
        ),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--cache", str(data)], f"--cache {data}: cannot make"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--lr", "inf"], "--lr inf: give a finite learning rate"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--task-weights", "nan,nan,nan"], "none negative"),
        (["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--snrs", "nan"], "--snrs nan: give a finite SNR"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        assert result.exit_code in (2, 5) and message in result.output and "Traceback" not in result.output, arguments
    assert runner.invoke(app, cases[3][0]).exit_code == 5


def test_library_errors_name_the_option_the_command_line_shows_as_a_flag(data, base, tmp_path):
    with pytest.raises(UsageError) as error:
        train(options(data, base, tmp_path / "run", task_weights=(0.0, 0.0, 0.0)))
    assert str(error.value).startswith("task_weights 0.0,0.0,0.0: give three weights")
    with pytest.raises(UsageError) as error:
        train(options(data, base, tmp_path / "run", rates=((8,), (2,))))
    assert str(error.value) == "rates: audio rate 8 is not one of this model's (4,16)"


def test_train_on_an_absent_cuda_device_is_a_usage_error(data, base, tmp_path):
    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    result = CliRunner().invoke(app, ["train", str(data), "-o", str(tmp_path / "o"), "--model", str(base), "--device", device])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert f"--device {device}: not usable here (" in result.stderr and "try --device cpu" in result.stderr


@pytest.mark.slow
def test_a_tiny_model_learns_every_task_from_scratch(tmp_path, data):
    """Loss, labels, adapters, rates and decoding fit together: 4 clips, every task and rate pair exact.

    At this learning rate 55 steps are the fewest that learn every pair (measured; 70 at 2e-3): 75 leave a margin.
    The clips come from the clip cache after the first step, which trains the same weights as decoding them
    (tested above) at a fraction of the cost."""
    base = save_random_model(tmp_path / "scratch", config("ST"))
    result = train(
        options(
            data,
            base,
            tmp_path / "run",
            max_steps=75,
            lr=3e-3,
            max_frames=100,
            save_every=1000,
            unfreeze=("audio-encoder", "video-encoder", "llm"),
            augmentation=Augmentation.off(),
            cache=tmp_path / "cache",
        )
    )
    model = load_model(result.model)
    examples = read_manifest(data).examples
    clips = []
    for example in examples:
        audio, crops = load_example(example)
        clips.append(Clip(audio=audio, video=video_input(crops)))
    for task in ("asr", "vsr", "avsr"):
        for rates in ((4, 2), (4, 5), (16, 2), (16, 5)):
            assert model.generate_text(clips, task, rates, DecodingOptions(num_beams=2)) == [e.text for e in examples], (task, rates)


def test_two_processes_with_ddp_equal_one_process_with_the_combined_batch(tmp_path):
    """torchrun, 2 CPU processes (gloo), half the batch each, against one process with the whole batch.

    Every clip has the same video, because BatchNorm is synchronised across GPUs but not across CPU
    processes, and dropout is off (its random draws differ per process): the rest must agree.
    """
    import os
    import subprocess
    import sys

    data = write_dataset(tmp_path / "data", same_video=True)
    base = save_random_model(tmp_path / "base", config("ST", dropout=0.0))
    common = ["train", str(data), "--model", str(base), "--max-steps", "3", "--workers", "0", "--no-augment", "--save-every", "10"]
    single = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "one"), "--max-frames", "100"])
    assert single.exit_code == 0, single.output
    environment = os.environ | {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "omniavsr_cli"]
    run = subprocess.run(
        [*launch, *common, "-o", str(tmp_path / "two"), "--max-frames", "50"], capture_output=True, text=True, env=environment
    )
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    assert len(records) == 3  # one log, from the main process
    one, two = (load_file(str(tmp_path / name / "model" / "model.safetensors")) for name in ("one", "two"))
    assert one.keys() == two.keys()
    worst = max(
        float((one[k].double() - two[k].double()).abs().max()) for k in one if one[k].is_floating_point() and "running_var" not in k
    )
    assert worst < 1e-5
    # BatchNorm's running variance is the unbiased estimate over each process's own frames: n/(n-1) with half the n
    assert all(torch.allclose(one[k], two[k], rtol=3e-3) for k in one if "running_var" in k)
    moved = load_file(str(base / "model.safetensors"))
    assert any(not torch.equal(one[k], moved[k]) for k in one if k in moved and "lora_A" in k)


@pytest.mark.slow
def test_ctrl_c_saves_the_step_and_rerunning_the_command_finishes_the_same_run(data, base, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    def command(output):
        return [
            "train",
            str(data),
            "-o",
            str(output),
            "--model",
            str(base),
            "--max-steps",
            "12",
            "--max-frames",
            "50",
            "--workers",
            "0",
            "--save-every",
            "100",
            # an epoch is two steps: decoding its clips again each time would cost more than the steps (the cache is
            # not part of the run's settings)
            "--cache",
            str(tmp_path / "cache"),
        ]

    process = subprocess.Popen([sys.executable, "-m", "omniavsr_cli", *command(tmp_path / "stopped")], stderr=subprocess.PIPE, text=True)
    log = tmp_path / "stopped" / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text()) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    [saved] = checkpoints.step_checkpoints(tmp_path / "stopped")
    step = int(saved.name.split("-")[1])
    assert 1 <= step < 12 and f"interrupted after step {step} of 12" in stderr and "Traceback" not in stderr
    # Every part runs in its own process alike: results depend on torch's thread count, which a test process may have changed.
    for output in ("stopped", "whole"):
        subprocess.run([sys.executable, "-m", "omniavsr_cli", *command(tmp_path / output)], capture_output=True, check=True)
    first, second = (load_file(str(tmp_path / name / "model" / "model.safetensors")) for name in ("stopped", "whole"))
    assert all(torch.equal(first[k], second[k]) for k in first)
