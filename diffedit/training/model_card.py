"""Write the demo checkpoint's README.md from its training run, training curve and evaluation results.

python -m diffedit.training.model_card [--checkpoint diffedit/resources/models/diffedit-demo]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from diffedit.training.checkpoint import DEMO_DIR, DENOISING_STEPS, SAMPLING_TEMPERATURE
from diffedit.training.corpus import read_documents
from diffedit.training.evaluate_demo import RESULTS_FILE
from diffedit.training.train_demo import CURVE_FILE, steps_run

SOURCE_PACKAGE = "python3.11-doc 3.11.2-6+deb12u9 (Debian 12)"
# Measured on this project's 2-core machine: 1,000 steps in 39.1 minutes with 2 torch threads (session 1).
CPU_SECONDS_PER_STEP = 2.35
CONVERTER = "pandoc 2.17.1.1 (Debian 12) with `diffedit/training/rst_to_md.lua`"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def curve_table(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = [
        "| step | loss (smoothed) | held-out one-pass accuracy | baseline | lr | minutes |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['step']} | {r['loss']} | {r['heldout_acc']} | {r['baseline_acc']} | {r['lr']} | "
        f"{r['elapsed_min']} |"
        for r in rows
    ]
    return "\n".join(lines)


def quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def samples_section(results: dict[str, Any]) -> str:
    parts = []
    for i, r in enumerate(results["regenerations"], 1):
        parts.append(
            f"**Sample {i}.** Original:\n\n{quote(r['original'])}\n\nRegenerated from noise:\n\n"
            f"{quote(r['generated']) if r['generated'].strip() else '> (empty)'}\n"
        )
    return "\n".join(parts)


def all_phases(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [*run.get("previous_phases", []), run]


def commands_block(run: dict[str, Any]) -> str:
    return "\n".join(
        "python -m diffedit.training.train_demo " + " ".join(p["argv"][1:]) for p in all_phases(run)
    )


def phase_times(run: dict[str, Any]) -> str:
    times = [float(p["wall_time_min"]) for p in all_phases(run)]
    if len(times) == 1:
        return f"{times[0]:.1f} minutes"
    return f"{sum(times):.1f} minutes ({' + '.join(f'{t:.1f}' for t in times)})"


def device_of(phase: dict[str, Any]) -> str:
    return str(phase["args"].get("device", "cpu"))


def devices_sentence(run: dict[str, Any]) -> str:
    devices = {device_of(p) for p in all_phases(run)}
    if devices == {"cpu"}:
        return "on 2 CPU cores shared with other people's jobs"
    steps = sum(steps_run(p["args"]) for p in all_phases(run))
    cpu_minutes = steps * CPU_SECONDS_PER_STEP / 60
    return (
        f"on a lent NVIDIA H100 (`--device cuda`). The same commands without `--device cuda` run on this "
        f"project's 2-core CPU machine in about {cpu_minutes:.0f} minutes ({steps:,} steps at the "
        f"{CPU_SECONDS_PER_STEP} s per step measured there with 2 torch threads)"
    )


def continuation_note(run: dict[str, Any]) -> str:
    if not run.get("previous_phases"):
        return ""
    return " Each later phase starts from the previous phase's saved (bf16) weights with a fresh optimizer."


def phase_table(run: dict[str, Any]) -> str:
    lines = [
        "| phase | device | steps run (schedule) | batch | peak lr | warmup | seed | torch threads "
        "| minutes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for i, p in enumerate(all_phases(run), 1):
        a = p["args"]
        lines.append(
            f"| {i} | {device_of(p)} | {steps_run(a)} ({a['steps']}) | {a['batch_size']} | {a['lr']} | "
            f"{a['warmup']} | {a['seed']} | {a['threads']} | {p['wall_time_min']} |"
        )
        if p.get("note"):
            notes.append(f"Phase {i}: {p['note']}.")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


def attention_summary(text_cfg: dict[str, Any]) -> str:
    heads, kv, dim = text_cfg["num_attention_heads"], text_cfg["num_key_value_heads"], text_cfg["head_dim"]
    return f"{heads} heads, {kv} KV heads, head dim {dim}"


def moe_summary(text_cfg: dict[str, Any]) -> str:
    n, k, size = text_cfg["num_experts"], text_cfg["top_k_experts"], text_cfg["moe_intermediate_size"]
    return f"{n} experts, top-{k}, expert size {size}"


def parameter_counts(checkpoint: Path) -> tuple[int, int]:
    from safetensors import safe_open

    total = vision = 0
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        for key in f.keys():  # noqa: SIM118
            n = 1
            for d in f.get_slice(key).get_shape():
                n *= d
            total += n
            vision += n if "vision" in key else 0
    return total, vision


def render(checkpoint: Path, data_dir: Path) -> str:
    run = read_json(checkpoint / "training_run.json")
    res = read_json(checkpoint / RESULTS_FILE)
    cfg = read_json(checkpoint / "config.json")
    text_cfg = cfg["text_config"]
    total, vision = parameter_counts(checkpoint)
    size_mb = (checkpoint / "model.safetensors").stat().st_size / 1e6
    heldout_docs = [d.source for d in read_documents(data_dir / "corpus" / "heldout.jsonl")]
    train_docs = read_documents(data_dir / "corpus" / "train.jsonl")
    args = run["args"]
    return f"""---
license: apache-2.0
language: en
library_name: transformers
pipeline_tag: text-generation
tags: [diffusion_gemma, text-diffusion, infill, demo]
---

# diffedit-demo

A tiny DiffusionGemma-architecture model (`DiffusionGemmaForBlockDiffusion`, uniform-state block diffusion)
trained from scratch by the diffedit project so the editor works offline. It fills in one Markdown block
(paragraph, heading, list item, short code block) given the text before and after it, in the
fill-in-the-middle format of `diffedit_infill.json`:
`<bos> <|suffix|> SUFFIX <|prefix|> PREFIX <|middle|>`, then one {cfg["canvas_length"]}-token canvas
holding the target, one `<eos>`, then `<pad>`.

**It is a demo, not a writing assistant.** It does not follow instructions, has seen only Python
documentation, and produces fluent-looking but often wrong or incoherent text.

## Data and licences

- Source: the reST sources of the Python 3.11 documentation, from Debian's `{SOURCE_PACKAGE}`
  (`/usr/share/doc/python3.11/html/_sources/`). Copyright © 2001-2023 Python Software Foundation; the
  documentation is licensed under the PSF License Agreement, and code examples in it are dual licensed under
  the PSF License Agreement and the Zero-Clause BSD license (see the documentation's `license` page and
  `/usr/share/doc/python3.11-doc/copyright`).
- Conversion: {CONVERTER} (drops index entries, tables, raw HTML, API signatures, version notes; unwraps
  admonitions; fences code blocks), then a block filter keeping prose paragraphs, list items, headings and
  code blocks of at most 14 lines that follow prose. `c-api/`, `whatsnew/`, `distutils/`, `includes/` and the
  licence/glossary/contents pages are skipped. Script: `python -m diffedit.training.corpus`.
- {len(train_docs) + len(heldout_docs)} documents kept: {len(train_docs)} for training, {len(heldout_docs)}
  held out **by document** (a hash of the source path; never seen in training, nor by the tokenizer):
  {", ".join(f"`{s}`" for s in heldout_docs)}.
- Examples: every block as a target, plus a run of 2-3 consecutive blocks starting there; targets must fit one
  canvas (at most {cfg["canvas_length"] - 1} tokens plus `<eos>`), longer ones are skipped (no continuation
  canvases are trained). Prompts are built by `diffedit.engine.context.InfillFormat` with a budget of
  {args["budget"]} tokens, cut to a multiple of 16 tokens so batches need no padding; canvases by
  `diffedit.engine.canvas.layout_canvases`. {run["train_examples"]} training and {run["heldout_examples"]}
  held-out examples.
- `heldout_sample.jsonl`: 60 held-out (prefix, target, suffix) splits (context cut to 1,500 characters
  a side),
  used by the tests.

## Tokenizer

Byte-level BPE, {text_cfg["vocab_size"]} entries, trained with `tokenizers` on the training documents only.
Special tokens: `<pad>` 0, `<eos>` 1, `<bos>` 2, `<unk>` 3, `<|prefix|>` 4, `<|suffix|>` 5, `<|middle|>` 6.
Any UTF-8 text round-trips exactly (Markdown punctuation, newlines, tabs, indentation).

## Model

| | |
|---|---|
| architecture | `DiffusionGemmaForBlockDiffusion` (encoder and decoder share weights) |
| layers | {text_cfg["num_hidden_layers"]} ({", ".join(text_cfg["layer_types"])}) |
| hidden / dense MLP | {text_cfg["hidden_size"]} / {text_cfg["intermediate_size"]} |
| attention | {attention_summary(text_cfg)} |
| MoE | {moe_summary(text_cfg)} |
| vocab / canvas | {text_cfg["vocab_size"]} / {cfg["canvas_length"]} |
| parameters | {total / 1e6:.2f}M ({vision:,} in the unused, minimal vision tower the architecture builds) |
| weights | `model.safetensors`, bf16, {size_mb:.1f} MB |

## Training

```
{commands_block(run)}
```

(the first command fetches the corpus with apt if needed, trains the tokenizer, builds the examples and
trains from scratch; every phase has a fixed seed and data order.) Wall time of training:
**{phase_times(run)}** {devices_sentence(run)}, plus about 2 minutes of data
preparation.{continuation_note(run)}

- Objective: uniform-state diffusion. Per example a noise level t ~ U(0, 1] (stratified across the batch);
  that share of canvas positions (pads included, as generation starts from an all-random canvas) is replaced
  by uniform random tokens over the whole vocabulary; cross-entropy against the clean canvas. Weights: 1 on
  noised positions, {args["kept_weight"]} on kept ones (the model must also learn to keep correct tokens, as
  the sampler keeps accepted ones, but copying them is easy and would dominate at small t), and
  x{args["pad_weight"]} on pad positions (many and predictable once `<eos>` is placed).
- Self-conditioning on every other batch: a first forward without gradients, whose logits are fed back as
  `self_conditioning_logits` (with a per-example `self_conditioning_mask`) to the trained forward.
- Training runs through the model's own forward (`model(input_ids=prompt, cache=DynamicCache(...),
  decoder_input_ids=noised_canvas, ...)`), gradients flowing through the encoder's cache.
- AdamW (betas 0.9/0.98, weight decay {args["weight_decay"]}), clipping 1.0; per phase: linear warmup,
  then cosine to 0.1x the peak:

{phase_table(run)}

Training curve (`{CURVE_FILE}`; accuracy on a fixed subset of 384 held-out examples):

{curve_table(checkpoint / CURVE_FILE)}

## Evaluation

`python -m diffedit.training.evaluate_demo` on all {res["heldout_examples"]} held-out examples
({res["renoised_positions"]:,} re-noised positions): re-noise 50% of each target canvas's non-pad positions
with uniform random tokens (the rest kept, context on both sides given) and count the positions restored
exactly by the argmax of **one** forward pass.

| | one-pass accuracy at 50% noise |
|---|---:|
| diffedit-demo | **{res["model_accuracy"]:.4f}** |
| most frequent training-target token (`{res["baseline_token"]}`) | {res["baseline_accuracy"]:.4f} |
| ratio | **{res["ratio"]}x** |

Sampler (`generation_config.json`): up to {DENOISING_STEPS} denoising steps, entropy-bound acceptance
(bound 0.1), temperature {SAMPLING_TEMPERATURE[0]} to {SAMPLING_TEMPERATURE[1]}, adaptive stop (stable argmax
for 1 step and mean entropy below 0.005). The temperature is cooler than the 26B model's 0.4 to 0.8: at those
values this small model's drafts collapse into runs of "the the the" (checked by eye on two held-out blocks).

Speed: `model.generate` of one {cfg["canvas_length"]}-token canvas (prompt budget {args["budget"]}, up to
{DENOISING_STEPS} denoising steps, adaptive stop) takes a median of **{res["generate_median_s"]} s** on this
project's shared 2-core CPU machine in fp32 with {res["torch_threads"]} torch thread(s)
({len(res["generate_seconds"])} paragraphs: {res["generate_seconds"]} s).

## Full regenerations of held-out blocks

The target regenerated from random noise with the shipped generation config (first {len(res["regenerations"])}
entries of `heldout_sample.jsonl`, seed = index):

{samples_section(res)}
## Limits

- Trained only on Python documentation: other topics come out as Python-documentation-flavoured text.
- No instruction following: it only fills the marked block from its surroundings.
- One canvas: targets over {cfg["canvas_length"] - 1} tokens were never trained (no continuation canvases).
- Prompts of at most {args["budget"]} tokens in training; longer contexts are untested.
- Quality is far from a real model: expect grammatical but meaningless sentences, wrong facts and repetitions.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=DEMO_DIR)
    parser.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    (args.checkpoint / "README.md").write_text(render(args.checkpoint, args.data), encoding="utf-8")
    print(f"wrote {args.checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()
