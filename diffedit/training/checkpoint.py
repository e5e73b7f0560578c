"""Write the demo checkpoint: bf16 weights, config, generation config, tokenizer and the infill format."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
    DiffusionGemmaGenerationConfig,
    EntropyBoundSamplerConfig,
)

from diffedit.engine.context import INFILL_FILE, InfillFormat
from diffedit.resources import resources_dir

DEMO_DIR = resources_dir() / "models" / "diffedit-demo"
DENOISING_STEPS = 24
# Cooler than the 26B default (0.4..0.8): at 0.4..0.8 this small model's drafts collapse into runs of
# "the the the"; at 0.1..0.3 they stay varied and place <eos> (looked at on two held-out paragraphs).
SAMPLING_TEMPERATURE = (0.1, 0.3)


def generation_config(canvas_length: int) -> DiffusionGemmaGenerationConfig:
    """The sampler the demo ships with: fewer steps (26B default: 48), cooler, the same acceptance rule."""
    return DiffusionGemmaGenerationConfig(
        max_new_tokens=canvas_length,
        max_denoising_steps=DENOISING_STEPS,
        sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1),
        t_min=SAMPLING_TEMPERATURE[0],
        t_max=SAMPLING_TEMPERATURE[1],
        stability_threshold=1,
        confidence_threshold=0.005,
        bos_token_id=2,
        pad_token_id=0,
        eos_token_id=1,
    )


def save_checkpoint(model: PreTrainedModel, tokenizer: Any, out_dir: Path, context_tokens: int = 192) -> None:
    """Everything ``DiffusionGemmaForBlockDiffusion.from_pretrained`` and the editor need, weights in bf16."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bf16: Any = copy.deepcopy(model)
    bf16.to(torch.bfloat16)
    bf16.generation_config = generation_config(int(model.config.canvas_length))
    bf16.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / INFILL_FILE).write_text(
        json.dumps(InfillFormat(context_tokens=context_tokens).to_json(), indent=2) + "\n", encoding="utf-8"
    )
