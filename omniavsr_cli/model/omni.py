"""The whole Omni-AVSR model: both encoders, the per-rate projectors, the prompts and the LLM with Omni-LoRA.

Attribute names follow the official ``AVSR_LLMs`` so its checkpoint keys map onto ours one for one:
``audio_encoder``, ``video_encoder``, ``audio_proj``, ``video_proj``, ``llm`` and the ``prompt_*`` buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import InputError, UsageError
from ..timebase import FPS, MS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME
from ..timing import StageTimer
from . import transforms
from .audio_encoder import AudioEncoder
from .compression import RateProjectors
from .config import TASK_ADAPTER, TASKS, OmniAVSRConfig
from .llm import activate, build_llm
from .video_encoder import VideoEncoder

if TYPE_CHECKING:  # the options belong to decoding, a layer above the model
    from ..decoding import DecodingOptions

CPU_ENCODER_BATCH = 2
# The frozen parts of the official recipe, by the name `omniavsr train --unfreeze` takes, and their parameters.
BACKBONES = {"audio-encoder": "audio_encoder.", "video-encoder": "video_encoder.", "llm": "llm."}
IGNORE = -100  # label of a position the loss skips
TASK_MODALITIES = {"asr": ("audio",), "vsr": ("video",), "avsr": ("audio", "video")}  # in their order in the prefix


class OmniAVSR(nn.Module):
    def __init__(self, config: OmniAVSRConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.config = config
        hidden = config.llm.hidden_size
        self.audio_encoder = AudioEncoder(config.whisper, attn_implementation)
        self.video_encoder = VideoEncoder(config.avhubert, attn_implementation)
        projector = dict(
            hidden_size=config.projector_hidden_size, output_size=hidden, mode=config.compression, layernorm=config.projector_layernorm
        )
        self.audio_proj = RateProjectors(config.audio_rates, config.whisper.d_model, **projector)
        self.video_proj = RateProjectors(config.video_rates, config.avhubert.hidden_size, **projector)
        self.llm = build_llm(config, attn_implementation)
        # The released prompt embeddings live in the checkpoint (they equal embed_tokens(prompt ids) there).
        for task in ("audio", "video", "audiovisual"):
            self.register_buffer(f"prompt_{task}", torch.zeros(1, 0, hidden))
        self.freeze_backbones()

    def freeze_backbones(self, unfrozen: tuple[str, ...] = ()) -> None:
        """Train only what Omni-AVSR trains: the LLM LoRA, the AV-HuBERT LoRA and the projectors, plus the
        whole of each module named in ``unfrozen`` (BACKBONES: a model trained from scratch needs them all)."""
        unknown = set(unfrozen) - set(BACKBONES)
        if unknown:
            raise UsageError(f"cannot unfreeze {', '.join(sorted(unknown))}: choose from {', '.join(BACKBONES)}")
        prefixes = tuple(BACKBONES[name] for name in unfrozen)
        for name, weight in self.named_parameters():
            weight.requires_grad = "lora_" in name or name.startswith(("audio_proj.", "video_proj.", *prefixes))

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ inputs

    def set_prompt(self, task: str, token_ids: list[int]) -> None:
        """Store a task prompt's embeddings, as the official model computes them (embed_tokens of its ids)."""
        with torch.no_grad():
            ids = torch.tensor([token_ids], device=self.llm.get_input_embeddings().weight.device)
            setattr(self, f"prompt_{TASK_ADAPTER[task]}", self.llm.get_input_embeddings()(ids).clone())

    def _embed_ids(self, *ids: int) -> torch.Tensor:
        table = self.llm.get_input_embeddings()
        return table(torch.tensor(ids, device=table.weight.device))

    def _in_groups(self, items: list, encode) -> list[torch.Tensor]:
        """Run an encoder over ``items`` in groups of :attr:`encoder_batch_size` (on a CPU, small groups are
        faster: the activations of a large group fall out of cache; benchmarks in docs/benchmarks.md)."""
        size = self.encoder_batch_size or (len(items) if next(self.parameters()).is_cuda else CPU_ENCODER_BATCH)
        return [block for start in range(0, len(items), size) for block in encode(items[start : start + size])]

    def kept_audio_frames(self, samples: int) -> int:
        """50 Hz Whisper frames an utterance of ``samples`` keeps (the official count; at most the encoder's window)."""
        config = self.config
        return transforms.kept_audio_frames(samples, config.frame_count_rule, config.min_audio_frames, config.whisper.max_source_positions)

    def min_video_frames(self, rate: int) -> int:
        """Frames one video token needs at ``rate``: the pooling drops a window it cannot fill."""
        return rate

    def _check_lengths(self, clips: list[Clip], task: str, rates: tuple[int, int]) -> None:
        """A clip too short for one token of a modality its task uses is a clear error, not a pooling crash."""
        needed = self.min_video_frames(rates[1])
        for clip in clips:
            if task != "asr" and clip.video is not None and len(clip.video) < needed:
                raise InputError(
                    f"a clip of {len(clip.video)} video frame(s) is too short for video rate {rates[1]}: it needs at least "
                    f"{needed} ({needed * MS_PER_FRAME} ms); give a longer clip or use its audio (asr)",
                    code="E_TOO_SHORT",
                )
            # Audio is kept for at least min_audio_frames (25 in every shipped config), so only a smaller one can fall short.
            if task != "vsr" and clip.audio is not None and (kept := self.kept_audio_frames(len(clip.audio_for(task)))) < rates[0]:
                raise InputError(
                    f"a clip's audio keeps {kept} Whisper frame(s), too few for audio rate {rates[0]}; give a longer clip",
                    code="E_TOO_SHORT",
                )

    def _audio_blocks(self, waveforms: list[torch.Tensor], rate: int) -> list[torch.Tensor]:
        standardised = [transforms.standardise(w) for w in waveforms]
        if next(self.audio_encoder.parameters()).dtype == torch.bfloat16:
            # Lightning's bf16-true casts the standardised waveform to bf16 before the feature extractor.
            standardised = [w.to(torch.bfloat16).float() for w in standardised]
        kept = [self.kept_audio_frames(len(w)) for w in standardised]
        features = self.audio_encoder(standardised, kept)
        return [self.audio_proj(features[i : i + 1, :count], rate)[0] for i, count in enumerate(kept)]

    def _video_blocks(self, videos: list[torch.Tensor], rate: int) -> list[torch.Tensor]:
        lengths = [len(v) for v in videos]
        parameter = next(self.video_encoder.parameters())
        batch = torch.zeros(len(videos), max(lengths), *videos[0].shape[1:], device=parameter.device, dtype=parameter.dtype)
        mask = torch.zeros(len(videos), max(lengths), dtype=torch.bool, device=parameter.device)
        for i, video in enumerate(videos):
            batch[i, : len(video)], mask[i, : len(video)] = video, True
        features = self.video_encoder(batch, mask if min(lengths) != max(lengths) else None)
        return [self.video_proj(features[i : i + 1, :length], rate)[0] for i, length in enumerate(lengths)]

    def prefix_embeddings(self, clips: list[Clip], task: str, rates: tuple[int, int]) -> list[torch.Tensor]:
        """Each clip's LLM input up to the end of the prompt: BOS, [<audio> A </audio>], [<video> V </video>], prompt."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        self._check_lengths(clips, task, rates)
        tokens = self.config.tokens
        parts = [[self._embed_ids(tokens.bos)] for _ in clips]
        if task in ("asr", "avsr"):
            waveforms = [clip.audio_for(task) for clip in clips]
            start, end = self._embed_ids(tokens.audio_start), self._embed_ids(tokens.audio_end)
            for part, block in zip(parts, self._in_groups(waveforms, lambda group: self._audio_blocks(group, rates[0]))):
                part += [start, block.to(start.dtype), end]
        if task in ("vsr", "avsr"):
            start, end = self._embed_ids(tokens.video_start), self._embed_ids(tokens.video_end)
            for part, block in zip(
                parts, self._in_groups([clip.video for clip in clips], lambda group: self._video_blocks(group, rates[1]))
            ):
                part += [start, block.to(start.dtype), end]
        prompt = getattr(self, f"prompt_{TASK_ADAPTER[task]}")[0]
        return [torch.cat([*part, prompt.to(part[0].dtype)]) for part in parts]

    # ------------------------------------------------------------------ training

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor, rates: tuple[int, int], tasks: tuple[str, ...] = TASKS
    ) -> dict[str, torch.Tensor]:
        """The losses of one training batch for ``tasks`` (all three, as the official step computes them: §5.2, §3.4).

        ``audio`` (B, S): standardised waveforms, zero-padded to the longest; ``video`` (B, T, 1, 88, 88):
        normalised frames, zero-padded to the longest; ``text`` (B, L): BOS, transcript, EOS, right-padded
        with the pad id. Each encoder runs at most once, and only if a task in ``tasks`` needs it; the audio
        rate is shared by ASR and AVSR, the video rate by VSR and AVSR. As upstream there is no attention mask
        anywhere: every row attends to its padding. Each loss is the mean cross-entropy over the transcript
        tokens and EOS.
        """
        parameter = next(self.audio_encoder.parameters())
        tokens = self.config.tokens
        blocks = {}
        if {"asr", "avsr"} & set(tasks):
            if parameter.dtype == torch.bfloat16:
                audio = audio.to(torch.bfloat16)  # bf16-true training quantises the inputs too
            features = self.audio_encoder(list(audio.float()), [self.kept_audio_frames(audio.shape[1])])
            blocks["audio"] = self._wrap(self.audio_proj(features, rates[0]), tokens.audio_start, tokens.audio_end)
        if {"vsr", "avsr"} & set(tasks):
            features = self.video_encoder(video.to(device=parameter.device, dtype=parameter.dtype))
            blocks["video"] = self._wrap(self.video_proj(features, rates[1]), tokens.video_start, tokens.video_end)
        text = text.to(parameter.device)
        embedded = self.llm.get_input_embeddings()(text)
        labels = text.masked_fill(text == tokens.pad, IGNORE)
        losses = {}
        for task in tasks:
            prompt = getattr(self, f"prompt_{TASK_ADAPTER[task]}").to(embedded.dtype).expand(len(text), -1, -1)
            prefix = torch.cat([*(blocks[m] for m in TASK_MODALITIES[task]), prompt], dim=1)
            ignored = labels.new_full(prefix.shape[:2], IGNORE)
            activate(self.llm, self.config.variant, task)
            output = self.llm(
                inputs_embeds=torch.cat([embedded[:, :1], prefix, embedded[:, 1:]], dim=1),
                labels=torch.cat([labels[:, :1], ignored, labels[:, 1:]], dim=1),
            )
            losses[task] = output.loss
        return losses

    def _wrap(self, block: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """(B, N, H) projected tokens between their boundary tokens' embeddings."""
        boundary = self._embed_ids(start, end).to(block.dtype)
        batch = len(block)
        return torch.cat([boundary[:1].expand(batch, 1, -1), block, boundary[1:].expand(batch, 1, -1)], dim=1)

    # ------------------------------------------------------------------ scoring

    def token_logprobs(
        self, clips: list[Clip], task: str | list[str], rates: tuple[int, int], targets: list[list[int]]
    ) -> list[torch.Tensor]:
        """Teacher forcing: the log-probability of each target token (transcript ids + EOS) after the prefix.

        ``task`` is one task for all clips or one per clip (a mixed batch runs each task's adapters on its clips).
        """
        if not isinstance(task, str):
            return _per_task(
                task,
                clips,
                lambda chosen, indices: self.token_logprobs([clips[i] for i in indices], chosen, rates, [targets[i] for i in indices]),
            )
        activate(self.llm, self.config.variant, task)
        prefixes = self.prefix_embeddings(clips, task, rates)
        sequences = [
            torch.cat([prefix, self.llm.get_input_embeddings()(torch.tensor(ids, device=prefix.device))])
            for prefix, ids in zip(prefixes, targets)
        ]
        embeds, mask = left_pad(sequences)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits.float()
        results = []
        end = logits.shape[1]  # sequences are left-padded: every one ends at the last position
        for row, ids in enumerate(targets):
            predicting = logits[row, end - len(ids) - 1 : end - 1]  # the position before each target token
            results.append(predicting.log_softmax(-1).gather(-1, torch.tensor(ids, device=predicting.device)[:, None])[:, 0])
        return results

    # ------------------------------------------------------------------ prompts

    encoder_batch_size: int | None = None  # clips per encoder call; None: all on a GPU, CPU_ENCODER_BATCH on a CPU

    def set_prompts_from_tokenizer(self, tokenizer) -> None:
        """Compute the prompt embeddings from the configured prompt texts (a model built from scratch)."""
        for task, text in self.config.prompts.items():
            self.set_prompt(task, tokenizer(text, add_special_tokens=False).input_ids)

    # ------------------------------------------------------------------ decoding

    def generate(
        self,
        clips: list[Clip],
        task: str | list[str],
        rates: tuple[int, int],
        options: DecodingOptions,
        timer: StageTimer | None = None,
        prefixes: list[torch.Tensor] | None = None,
    ) -> list[list[int]]:
        """Token ids of each clip's transcript (EOS and padding removed); ``task`` may differ per clip. ``timer``
        gets the seconds spent in the "encoders" and the "llm" (waiting for a GPU to finish each). ``prefixes``:
        the clips' ``prefix_embeddings``, when the caller has them already (they are reused, not recomputed)."""
        if not isinstance(task, str):
            return _per_task(
                task,
                clips,
                lambda chosen, indices: self.generate(
                    [clips[i] for i in indices], chosen, rates, options, timer, None if prefixes is None else [prefixes[i] for i in indices]
                ),
            )
        activate(self.llm, self.config.variant, task)
        timer = timer or StageTimer()
        wait = torch.cuda.synchronize if next(self.parameters()).is_cuda else None
        with timer.timed("encoders", wait):
            embeds, mask = left_pad(prefixes if prefixes is not None else self.prefix_embeddings(clips, task, rates))
        seconds = max(clip.seconds for clip in clips)
        tokens = self.config.tokens
        if options.seed is not None:
            torch.manual_seed(options.seed)
        with timer.timed("llm", wait):
            output = self.llm.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=options.max_new_tokens_for(seconds),
                num_beams=options.num_beams,
                do_sample=options.sample,
                temperature=options.temperature if options.sample else None,
                top_p=options.top_p if options.sample else None,
                top_k=None,
                length_penalty=1.0,
                early_stopping=False,
                no_repeat_ngram_size=options.no_repeat_ngram_size,
                eos_token_id=tokens.eos,
                bos_token_id=tokens.bos,
                pad_token_id=tokens.pad,
            )
        ids = []
        for row in output.tolist():
            ids.append(row[: row.index(tokens.eos)] if tokens.eos in row else [t for t in row if t != tokens.pad])
        return ids


def _per_task(tasks: list[str], clips: list, run) -> list:
    """Run ``run(task, indices)`` once per task present and put the results back in the clips' order."""
    if len(tasks) != len(clips):
        raise ValueError(f"{len(tasks)} tasks for {len(clips)} clips")
    results: list = [None] * len(clips)
    for chosen in dict.fromkeys(tasks):
        indices = [i for i, t in enumerate(tasks) if t == chosen]
        for index, result in zip(indices, run(chosen, indices)):
            results[index] = result
    return results


@dataclass
class Clip:
    """One clip's model inputs: 16 kHz mono audio and/or normalised (T, 1, 88, 88) video (transforms.video_input)."""

    audio: torch.Tensor | None = None
    video: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # numpy arrays (what the media front end gives) are welcome too.
        if self.audio is not None:
            self.audio = torch.as_tensor(self.audio, dtype=torch.float32)
        if self.video is not None:
            self.video = torch.as_tensor(self.video, dtype=torch.float32)

    def audio_for(self, task: str) -> torch.Tensor:
        if self.audio is None:
            raise ValueError(f"task {task} needs audio")
        if task == "avsr":
            if self.video is None:
                raise ValueError("task avsr needs video")
            # AVSR audio is cut or padded to the video's length before standardisation, as upstream.
            return transforms.cut_or_pad(self.audio, len(self.video) * SAMPLES_PER_FRAME)
        return self.audio

    @property
    def seconds(self) -> float:
        if self.video is not None:
            return len(self.video) / FPS
        return len(self.audio) / SAMPLE_RATE if self.audio is not None else 0.0


def left_pad(sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, H) embeddings -> (B, L_max, H) with zeros on the left, and the attention mask (1 = real)."""
    longest = max(len(s) for s in sequences)
    embeds = sequences[0].new_zeros(len(sequences), longest, sequences[0].shape[-1])
    mask = torch.zeros(len(sequences), longest, dtype=torch.long, device=embeds.device)
    for row, sequence in enumerate(sequences):
        embeds[row, longest - len(sequence) :], mask[row, longest - len(sequence) :] = sequence, 1
    return embeds, mask
