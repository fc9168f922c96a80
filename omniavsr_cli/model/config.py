"""One configuration for the whole model, saved as ``config.json`` beside the weights.

Every hyperparameter the official scripts take as training flags lives here (and must be repeated there at
inference); with it saved next to the weights, loading a model needs nothing else. Defaults are the released
Omni-AVSR models: Whisper-medium.en, AV-HuBERT Large, Llama-3.2-1B, rates (4, 16) and (2, 5), avg pooling.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import UsageError, parameter

TASKS = ("asr", "vsr", "avsr")
# The official code keys its per-task LoRA by modality name.
TASK_ADAPTER = {"asr": "audio", "vsr": "video", "avsr": "audiovisual"}
VARIANTS = ("S", "T", "ST")
COMPRESSION_MODES = ("avg-pooling", "stack")
# How many Whisper frames an utterance of S samples keeps: "bf16" and "float32" reproduce the official
# int(tensor(S) / 16000 * 50) under that default dtype (the released weights were trained and evaluated in
# bf16); "exact" is floor(S / 320). See docs/model.md.
FRAME_COUNT_RULES = ("bf16", "float32", "exact")


@dataclass
class WhisperEncoderConfig:
    num_mel_bins: int = 80
    d_model: int = 1024
    encoder_layers: int = 24
    encoder_attention_heads: int = 16
    encoder_ffn_dim: int = 4096
    max_source_positions: int = 1500  # 50 Hz frames in the encoder's window: 1500 = the 30 s Whisper was trained on

    @property
    def window_seconds(self) -> int:
        """The audio every utterance is padded (or cut) to before the encoder."""
        return self.max_source_positions // 50


@dataclass
class AVHubertConfig:
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    resnet_width: int = 64  # the 3-D front end's channels; the ResNet-18 trunk ends at 8x this
    audio_feature_size: int = 104  # the unused audio front end's input (stacked filterbanks); zeros go in its place
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    lora_reduction: int = 16  # bottleneck = hidden_size / lora_reduction (64)
    lora_scale: float = 2.0
    dropout: float = 0.1  # AV-HuBERT Large's dropout, attention dropout and input dropout: active in training
    layerdrop: float = 0.05


@dataclass
class LlamaConfigSubset:
    vocab_size: int = 128261  # 128256 + <pad>, <audio>, </audio>, <video>, </video>
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_hidden_layers: int = 16
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    max_position_embeddings: int = 131072
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling: dict | None = field(
        default_factory=lambda: {
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        }
    )
    tie_word_embeddings: bool = True


@dataclass
class TokenIds:
    bos: int = 128000
    eos: int = 128001
    pad: int = 128256
    audio_start: int = 128257
    audio_end: int = 128258
    video_start: int = 128259
    video_end: int = 128260


@dataclass
class OmniAVSRConfig:
    variant: str = "ST"
    audio_rates: tuple[int, ...] = (4, 16)
    video_rates: tuple[int, ...] = (2, 5)
    compression: str = "avg-pooling"
    projector_hidden_size: int = 2048
    projector_layernorm: bool = False  # the released checkpoints have none (official bug, omni-avsr.md §2.1)
    lora_reduction: int = 32  # LLM LoRA bottleneck = hidden_size / lora_reduction (64)
    lora_alpha: float = 4.0  # scaling = lora_alpha / lora_reduction (0.125)
    prompts: dict[str, str] = field(
        default_factory=lambda: {
            "asr": "Transcribe speech to text.",
            "vsr": "Transcribe video to text.",
            "avsr": "Transcribe speech and video to text.",
        }
    )
    frame_count_rule: str = "bf16"
    # The longest speech the model learned to transcribe in one piece; transcribe sends no longer chunks. The
    # released models: 16 s (LRS3 segments). The demo model saw one GRID sentence per clip: given two, it
    # writes one.
    longest_chunk_seconds: float = 16.0
    min_audio_frames: int = 25
    # The LLM's (layer, head) pairs whose attention finds where each word is said (docs/word-timings.md), found
    # on labelled clips by `omniavsr align-heads`; they are a property of the weights, so they live beside them.
    # None: not calibrated (word timings fall back to alignment.default_heads).
    alignment_heads: tuple[tuple[int, int], ...] | None = None
    whisper: WhisperEncoderConfig = field(default_factory=WhisperEncoderConfig)
    avhubert: AVHubertConfig = field(default_factory=AVHubertConfig)
    llm: LlamaConfigSubset = field(default_factory=LlamaConfigSubset)
    tokens: TokenIds = field(default_factory=TokenIds)

    def __post_init__(self) -> None:
        self.audio_rates, self.video_rates = tuple(self.audio_rates), tuple(self.video_rates)
        for name, value, allowed in (
            ("variant", self.variant, VARIANTS),
            ("compression", self.compression, COMPRESSION_MODES),
            ("frame_count_rule", self.frame_count_rule, FRAME_COUNT_RULES),
        ):
            if value not in allowed:
                raise ValueError(f"config {name} {value!r}: expected one of {', '.join(allowed)}")
        if set(self.prompts) != set(TASKS):
            raise ValueError(f"config prompts: need exactly {', '.join(TASKS)}")
        if self.whisper.max_source_positions % 50:
            raise ValueError(
                f"config whisper.max_source_positions {self.whisper.max_source_positions}: must be whole seconds (a multiple of 50)"
            )
        if self.alignment_heads is not None:
            self.alignment_heads = self._checked_heads(self.alignment_heads)

    def _checked_heads(self, heads: object) -> tuple[tuple[int, int], ...]:
        """``heads`` as sorted, distinct (layer, head) pairs of whole numbers, each one of the LLM's."""
        layers, count = self.llm.num_hidden_layers, self.llm.num_attention_heads
        if isinstance(heads, (str, bytes)) or not isinstance(heads, (list, tuple)) or not heads:
            raise ValueError(f"config alignment_heads: expected a non-empty list of [layer, head] pairs, found {heads!r}")
        pairs = set()
        for pair in heads:
            whole = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(type(n) is int for n in pair)
            if not whole:
                raise ValueError(f"config alignment_heads: {pair!r} is not a [layer, head] pair of whole numbers")
            layer, head = pair
            if not (0 <= layer < layers and 0 <= head < count):
                raise ValueError(f"config alignment_heads: ({layer}, {head}) is not in an LLM of {layers} layers x {count} heads")
            pairs.add((layer, head))
        return tuple(sorted(pairs))

    @property
    def lora_rank(self) -> int:
        return round(self.llm.hidden_size / self.lora_reduction)

    @property
    def lora_scaling(self) -> float:
        return self.lora_alpha / self.lora_reduction

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OmniAVSRConfig:
        nested = {"whisper": WhisperEncoderConfig, "avhubert": AVHubertConfig, "llm": LlamaConfigSubset, "tokens": TokenIds}
        if not isinstance(data, dict):
            raise ValueError(f"config: expected an object of settings, found {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        values = dict(data)
        for name, kind in nested.items():
            if name in values:
                if not isinstance(values[name], dict):
                    raise ValueError(f"config {name}: expected an object of settings, found {type(values[name]).__name__}")
                sub_known = {f.name for f in fields(kind)}
                if set(values[name]) - sub_known:
                    raise ValueError(f"unknown config keys in {name}: {', '.join(sorted(set(values[name]) - sub_known))}")
                values[name] = kind(**values[name])
        try:
            return cls(**values)
        except TypeError as error:  # a value of the wrong type, e.g. a number for a list of rates
            raise ValueError(f"config: {error}") from None

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> OmniAVSRConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def check_rates(self, rates: tuple[int, int] | None) -> tuple[int, int]:
        """The (audio, video) rates to use (None: the finest); a pair the model was not trained with is an error listing the valid ones."""
        if rates is None:
            return (self.audio_rates[0], self.video_rates[0])
        if rates[0] in self.audio_rates and rates[1] in self.video_rates:
            return tuple(rates)
        valid = " ".join(f"{a},{v}" for a in self.audio_rates for v in self.video_rates)
        raise UsageError(
            f"{parameter('rates')} {rates[0]},{rates[1]}: this model was trained with audio rates {list(self.audio_rates)} and video rates "
            f"{list(self.video_rates)}; choose one of {valid}"
        )
