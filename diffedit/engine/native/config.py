"""The parts of a DiffusionGemma ``config.json`` and ``generation_config.json`` the native model runs on.

Read as transformers 5.24's ``DiffusionGemmaTextConfig`` resolves them (its dataclass defaults, the layer
pattern when ``layer_types`` is missing, the last layer forced to full attention, the full-attention layers'
``global_head_dim`` when no ``per_layer_config`` was saved). Anything this reader does not model exactly is
refused with a reason (:class:`Unsupported`), and the checkpoint then loads through transformers instead.
No torch here: the CLI decides which implementation to load before importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffedit.engine.checkpoint_check import read_json

SLIDING = "sliding_attention"
FULL = "full_attention"
ROPE_TYPES = ("default", "proportional")
ACTIVATIONS = ("gelu_pytorch_tanh",)
# per_layer_config keys that change what a layer computes and that this implementation models
LAYER_OVERRIDES = ("head_dim", "num_key_value_heads")


class Unsupported(ValueError):
    """The checkpoint needs something the native implementation does not model; transformers loads it."""


@dataclass(frozen=True)
class TextConfig:
    """``text_config`` as the model computes with it (the engine reads ``vocab_size``, ``layer_types`` and
    ``num_hidden_layers`` off it, as off transformers' config)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    layer_types: list[str]
    head_dims: list[int]  # per layer, after per_layer_config
    kv_heads: list[int]  # per layer, after per_layer_config
    rms_norm_eps: float
    pad_token_id: int | None
    attention_bias: bool
    sliding_window: int
    final_logit_softcapping: float | None
    num_experts: int
    top_k_experts: int
    moe_intermediate_size: int
    rope_parameters: dict[str, dict[str, Any]]

    def get_text_config(self, decoder: bool = False) -> TextConfig:
        return self


@dataclass(frozen=True)
class ModelConfig:
    """The top-level config: the engine reads ``canvas_length`` and ``text_config`` off it."""

    text_config: TextConfig
    canvas_length: int

    def get_text_config(self, decoder: bool = False) -> TextConfig:
        return self.text_config


@dataclass(frozen=True)
class SamplerSettings:
    entropy_bound: float


@dataclass(frozen=True)
class GenerationConfig:
    """``generation_config.json``'s fields that the engine reads (None where the file leaves one out)."""

    max_denoising_steps: int | None = None
    sampler_config: SamplerSettings | None = None
    t_min: float | None = None
    t_max: float | None = None
    stability_threshold: int | None = None
    confidence_threshold: float | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# DiffusionGemmaTextConfig's dataclass defaults (transformers 5.24), for keys a config.json leaves out.
_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_144,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 30,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-6,
    "pad_token_id": 0,
    "tie_word_embeddings": True,
    "rope_parameters": None,
    "attention_bias": False,
    "sliding_window": 512,
    "layer_types": None,
    "final_logit_softcapping": 30.0,
    "use_bidirectional_attention": None,
    "num_experts": None,
    "top_k_experts": None,
    "moe_intermediate_size": None,
}
_DEFAULT_ROPE: dict[str, dict[str, Any]] = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}


def read_text_config(config: dict[str, Any]) -> TextConfig:
    """``config.json``'s ``text_config`` resolved, or :class:`Unsupported` naming what is not modelled."""
    if config.get("model_type") != "diffusion_gemma":
        raise Unsupported(f"model_type {config.get('model_type')!r} is not diffusion_gemma")
    raw = config.get("text_config")
    if not isinstance(raw, dict):
        raise Unsupported("config.json has no text_config")
    c = {**_TEXT_DEFAULTS, **raw}
    if c["use_bidirectional_attention"] is not None:
        raise Unsupported(f"use_bidirectional_attention={c['use_bidirectional_attention']!r}")
    if c["hidden_activation"] not in ACTIVATIONS:
        raise Unsupported(f"hidden_activation {c['hidden_activation']!r}")
    if not c["tie_word_embeddings"] or not config.get("tie_word_embeddings", True):
        raise Unsupported("untied word embeddings")
    if not (c["num_experts"] and c["top_k_experts"] and c["moe_intermediate_size"]):
        raise Unsupported("no MoE experts in the config")
    if config.get("quantization_config") or raw.get("quantization_config"):
        raise Unsupported("a quantised checkpoint")
    layers = int(c["num_hidden_layers"])
    types = c["layer_types"]
    if types is None:
        types = [SLIDING if (i + 1) % 6 else FULL for i in range(layers)]
    types = list(types)
    if len(types) != layers or any(t not in (SLIDING, FULL) for t in types):
        raise Unsupported(f"layer_types {types!r}")
    types[-1] = FULL  # as transformers forces it
    rope = c["rope_parameters"] or _DEFAULT_ROPE
    for kind in set(types):
        params = rope.get(kind)
        if not isinstance(params, dict) or params.get("rope_type") not in ROPE_TYPES:
            raise Unsupported(f"rope_parameters for {kind}: {params!r}")
    head_dims = [int(c["head_dim"])] * layers
    kv_heads = [int(c["num_key_value_heads"])] * layers
    overrides: dict[int, dict[str, Any]]
    if "per_layer_config" in raw:
        saved = raw["per_layer_config"] or {}
        if not isinstance(saved, dict):
            raise Unsupported("per_layer_config is not a mapping of layer index to overrides")
        try:
            overrides = {int(k): dict(v or {}) for k, v in saved.items()}
        except (TypeError, ValueError) as exc:
            raise Unsupported(f"per_layer_config keys ({exc})") from exc
    else:  # transformers' default: the full-attention layers take global_head_dim (and global kv heads)
        extra: dict[str, Any] = {"head_dim": raw.get("global_head_dim", 512)}
        if raw.get("num_global_key_value_heads") is not None:
            extra["num_key_value_heads"] = raw["num_global_key_value_heads"]
        overrides = {i: dict(extra) for i, t in enumerate(types) if t == FULL}
    for i, o in overrides.items():
        unknown = set(o) - set(LAYER_OVERRIDES)
        if unknown or not 0 <= i < layers:
            raise Unsupported(f"per_layer_config[{i}] overrides {sorted(o)}")
        head_dims[i] = int(o.get("head_dim", head_dims[i]))
        kv_heads[i] = int(o.get("num_key_value_heads", kv_heads[i]))
    for kind in set(types):  # the rotary tables are per layer type: one head size per type
        dims = {head_dims[i] for i, t in enumerate(types) if t == kind}
        if len(dims) != 1:
            raise Unsupported(f"{kind} layers with different head sizes {sorted(dims)}")
    softcap = c["final_logit_softcapping"]
    return TextConfig(
        vocab_size=int(c["vocab_size"]),
        hidden_size=int(c["hidden_size"]),
        intermediate_size=int(c["intermediate_size"]),
        num_hidden_layers=layers,
        num_attention_heads=int(c["num_attention_heads"]),
        layer_types=types,
        head_dims=head_dims,
        kv_heads=kv_heads,
        rms_norm_eps=float(c["rms_norm_eps"]),
        pad_token_id=None if c["pad_token_id"] is None else int(c["pad_token_id"]),
        attention_bias=bool(c["attention_bias"]),
        sliding_window=int(c["sliding_window"]),
        final_logit_softcapping=None if softcap is None else float(softcap),
        num_experts=int(c["num_experts"]),
        top_k_experts=int(c["top_k_experts"]),
        moe_intermediate_size=int(c["moe_intermediate_size"]),
        rope_parameters={k: dict(v) for k, v in rope.items()},
    )


def read_config(folder: Path) -> ModelConfig:
    config = read_json(folder / "config.json")
    return ModelConfig(read_text_config(config), int(config.get("canvas_length", 256) or 256))


def read_generation_config(folder: Path) -> GenerationConfig:
    path = folder / "generation_config.json"
    if not path.is_file():
        raise Unsupported("no generation_config.json")
    data = dict(read_json(path))
    sampler = data.pop("sampler_config", None)
    settings = None
    if isinstance(sampler, dict):
        if sampler.get("_cls_name", "EntropyBoundSamplerConfig") != "EntropyBoundSamplerConfig":
            raise Unsupported(f"sampler {sampler.get('_cls_name')!r}")
        settings = SamplerSettings(float(sampler["entropy_bound"]))
    elif sampler is not None:
        raise Unsupported("sampler_config is not a mapping")
    known = ("max_denoising_steps", "t_min", "t_max", "stability_threshold", "confidence_threshold")
    values = {k: data.pop(k, None) for k in known}
    ids = {k: data.pop(k, None) for k in ("eos_token_id", "pad_token_id", "bos_token_id")}
    return GenerationConfig(sampler_config=settings, extra=data, **values, **ids)
