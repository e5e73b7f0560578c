"""Write the demo checkpoint's README.md from its training run, training curve and evaluation results.

python -m diffedit.training.model_card [--checkpoint diffedit/resources/models/diffedit-demo]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from diffedit.training.checkpoint import DEMO_DIR
from diffedit.training.compare_demos import COMPARISON_FILE
from diffedit.training.corpus import read_documents
from diffedit.training.evaluate_demo import RESULTS_FILE
from diffedit.training.sweep_sampling import SWEEP_FILE
from diffedit.training.train_demo import CURVE_FILE, steps_run

SOURCE_PACKAGE = "python3.11-doc 3.11.2-6+deb12u9 (Debian 12)"
# Seconds per training step on this project's 2-core machine with 2 torch threads, per model shape:
# demo-1 1,000 steps in 39.1 minutes (session 1); demo-2 an estimate (demo-1's time x 2.26, its active
# parameters per token), to be replaced by the CPU run's own figure (training_run.json's wall time / steps).
CPU_SECONDS_PER_STEP = {"demo-1": 2.35, "demo-2": 5.3}
CONVERTER = "pandoc 2.17.1.1 (Debian 12) with `diffedit/training/rst_to_md.lua`"
CURVE_FIGURE = "training_curve.svg"
# The data section of a model trained on the Python documentation alone (the first demo).
PYTHON_DATA = """- Source: the reST sources of the Python 3.11 documentation, from Debian's `{source_package}`
  (`/usr/share/doc/python3.11/html/_sources/`). Copyright © 2001-2023 Python Software Foundation; the
  documentation is licensed under the PSF License Agreement, and code examples in it are dual licensed under
  the PSF License Agreement and the Zero-Clause BSD license (see the documentation's `license` page and
  `/usr/share/doc/python3.11-doc/copyright`).
- Conversion: {converter} (drops index entries, tables, raw HTML, API signatures, version notes; unwraps
  admonitions; fences code blocks), then a block filter keeping prose paragraphs, list items, headings and
  code blocks of at most 14 lines that follow prose. `c-api/`, `whatsnew/`, `distutils/`, `includes/` and the
  licence/glossary/contents pages are skipped. Script: `python -m diffedit.training.corpus`.
- {total} documents kept: {train} for training, {heldout}
  held out **by document** (a hash of the source path; never seen in training, nor by the tokenizer):
  {heldout_list}."""


LATENCY_FILE = "rewrite_latency.json"  # benchmarks/rewrite_latency.py --out CHECKPOINT/rewrite_latency.json


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


def shape_of(phase: dict[str, Any]) -> str:
    return str(phase["args"].get("shape", "demo-1"))


def devices_sentence(run: dict[str, Any]) -> str:
    devices = {device_of(p) for p in all_phases(run)}
    if devices == {"cpu"}:
        return "on this project's 2-core CPU machine (2 torch threads)"
    steps = sum(steps_run(p["args"]) for p in all_phases(run))
    per_step = CPU_SECONDS_PER_STEP.get(shape_of(run), CPU_SECONDS_PER_STEP["demo-1"])
    cpu_minutes = steps * per_step / 60
    gpu = run.get("device_name") or "NVIDIA H100"  # runs before device_name was recorded: the H100
    return (
        f"on a lent {gpu} (`--device cuda`). The same commands without `--device cuda` run on this "
        f"project's 2-core CPU machine in about {cpu_minutes:.0f} minutes ({steps:,} steps at the "
        f"{per_step} s per step measured there with 2 torch threads)"
    )


def continuation_note(run: dict[str, Any]) -> str:
    if not run.get("previous_phases"):
        return ""
    note = " Each later phase starts from the previous phase's saved (bf16) weights with a fresh optimizer"
    skipped = [p.get("skipped_batches", 0) for p in all_phases(run)[1:]]
    if any(skipped):
        note += (
            ", and goes on in the first phase's data order where the phases before it stopped (skipping the "
            + ", ".join(f"{n:,}" for n in skipped)
            + " batches they trained on), with fresh noise"
        )
    return note + "."


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


def read_optional(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def sources_table(summary: dict[str, Any]) -> str:
    lines = [
        "| source | Debian package (version) | licence | register | train documents | train characters "
        "| held-out documents | held out whole |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    held = set(summary.get("heldout_sources", []))
    for r in summary["sources"]:
        docs = r["heldout_source"]["documents"] if r["source"] in held else r["heldout"]["documents"]
        lines.append(
            f"| {r['source']} | `{' + '.join(r['packages'])}` {r['version']} | {r['licence']} "
            f"| {r['register']} "
            f"| {r['train']['documents']:,} | {r['train']['chars']:,} | {docs:,} | "
            f"{'**yes**' if r['source'] in held else 'no'} |"
        )
    return "\n".join(lines)


def corpus_section(summary: dict[str, Any]) -> str:
    """The data section of a corpus built from several sources (``sources.json``)."""
    dropped = summary["duplicates_dropped"]
    held = ", ".join(f"`{h}`" for h in summary["heldout_sources"]) or "none"
    return f"""Every source is a Debian package from main (DFSG-free; `python -m diffedit.training.corpus`
checks the archive area and refuses anything else), converted to Markdown with {summary["pandoc"]}
(`rst_to_md.lua` for reST, `html_to_md.lua` for DocBook, asciidoc and texinfo HTML, `pod2markdown` then pandoc
for POD; WordNet glosses one short paragraph a synset), then filtered block by block: prose paragraphs,
list items, headings, and code blocks of at most 14 lines that follow prose. The licence of each is the one
in the package's `/usr/share/doc/PACKAGE/copyright`.

{sources_table(summary)}

- Deduplicated paragraph by paragraph across all sources: exact after normalisation (case, punctuation,
  markup) and near duplicates (MinHash of word 3-shingles, estimated Jaccard >= 0.8):
  {dropped["exact"]:,} exact and {dropped["near"]:,} near duplicates dropped; held-out text is kept first,
  so a training paragraph that repeats a held-out one is what goes.
- Held out **by document** ({summary["heldout_percent"]}% by a hash of the source path; never seen in
  training, nor by the tokenizer), and **by source**: {held} is held out whole, the "text not from its
  corpus" the dictionary-word rate is measured on."""


def curve_svg(rows: list[dict[str, str]], width: int = 640, height: int = 260) -> str:
    """A two-panel line chart (smoothed loss; held-out one-pass accuracy and the baseline) as plain SVG."""
    steps = [float(r["step"]) for r in rows]
    panels = [
        ("loss (smoothed)", [("loss", [float(r["loss"]) for r in rows], "#1f77b4")]),
        (
            "held-out one-pass accuracy",
            [
                ("model", [float(r["heldout_acc"]) for r in rows], "#d62728"),
                ("baseline", [float(r["baseline_acc"]) for r in rows], "#7f7f7f"),
            ],
        ),
    ]
    pw, ph, pad = width // 2, height, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    x0, x1 = min(steps), max(steps)
    for i, (title, series) in enumerate(panels):
        ox = i * pw
        values = [v for _, vals, _ in series for v in vals]
        lo, hi = min(values), max(values)
        if hi == lo:
            hi = lo + 1.0

        def xy(step: float, v: float, lo: float = lo, hi: float = hi, ox: int = ox) -> str:
            x = ox + pad + (step - x0) / max(1.0, x1 - x0) * (pw - 2 * pad)
            y = ph - pad - (v - lo) / (hi - lo) * (ph - 2 * pad)
            return f"{x:.1f},{y:.1f}"

        parts.append(f'<text x="{ox + pad}" y="16">{title}</text>')
        parts.append(
            f'<polyline fill="none" stroke="black" points="{ox + pad},{pad} {ox + pad},{ph - pad} '
            f'{ox + pw - pad},{ph - pad}"/>'
        )
        parts.append(f'<text x="{ox + 2}" y="{pad + 4}">{hi:.3g}</text>')
        parts.append(f'<text x="{ox + 2}" y="{ph - pad}">{lo:.3g}</text>')
        parts.append(f'<text x="{ox + pad}" y="{ph - pad + 14}">{x0:.0f}</text>')
        parts.append(f'<text x="{ox + pw - pad - 30}" y="{ph - pad + 14}">step {x1:.0f}</text>')
        for k, (name, vals, colour) in enumerate(series):
            points = " ".join(xy(st, v) for st, v in zip(steps, vals, strict=True))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
            parts.append(f'<text x="{ox + pw - pad - 60}" y="{pad + 12 * k}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def read_curve(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sampler_section(checkpoint: Path, res: dict[str, Any]) -> str:
    gen = read_json(checkpoint / "generation_config.json")
    bound = (gen.get("sampler_config") or {}).get("entropy_bound", 0.1)
    text = (
        f"Sampler (`generation_config.json`): up to {gen['max_denoising_steps']} denoising steps, "
        f"entropy-bound acceptance (bound {bound}), temperature {gen['t_min']} to {gen['t_max']}, "
        "adaptive stop "
        f"(stable argmax for {gen.get('stability_threshold', 1)} step(s) and mean entropy below "
        f"{gen.get('confidence_threshold', 0.005)})."
    )
    sweep = read_optional(checkpoint / SWEEP_FILE)
    if sweep is None:
        return text
    lines = [
        "| t_min..t_max | entropy bound | dictionary-word rate | repetition | empty | steps (mean) "
        "| seconds (median) |"
        + (" held-out source: dictionary-word rate |" if "heldout_source" in sweep["blocks"] else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if "heldout_source" in sweep["blocks"] else ""),
    ]
    for r in sweep["rows"]:
        st, sel = r["setting"], r["selection"]
        mark = "**" if r["setting"] == sweep["best"]["setting"] else ""
        line = (
            f"| {mark}{st['t_min']}..{st['t_max']}{mark} | {st['entropy_bound']} "
            f"| {sel['dictionary_word_rate']} | "
            f"{sel['repetition']} | {sel['empty']} | {sel['steps_mean']} | {sel['seconds_median']} |"
        )
        if "heldout_source" in r:
            line += f" {r['heldout_source']['dictionary_word_rate']} |"
        lines.append(line)
    original = sweep["original"]["selection"]
    return f"""{text}

Chosen by `python -m diffedit.training.sweep_sampling --write`: every setting rewrote the same
{sweep["blocks"]["selection"]} held-out prose blocks from noise {rewrite_path(sweep)} (seed = index); the
highest dictionary-word rate whose repetition stays within 0.05 of the originals' ({original["repetition"]})
with at most 5% empty outputs wins (the held-out source's column is shown, never used to choose). The
original blocks themselves score {original["dictionary_word_rate"]}.

{chr(10).join(lines)}"""


def comparison_section(res: dict[str, Any], comparison: dict[str, Any] | None = None) -> str:
    """This model's dictionary-word rates, beside the first demo's where ``compare_demos`` measured both."""
    dic = res.get("dictionary")
    if not dic:
        return ""
    if comparison is not None:
        return measured_comparison(res, comparison)
    docs, src = dic.get("heldout_documents"), dic.get("heldout_source")

    def cell(d: dict[str, Any] | None) -> str:
        return "n/a" if d is None else f"**{d['dictionary_word_rate']}** ({d['words']:,} words)"

    def orig(d: dict[str, Any] | None) -> str:
        return "n/a" if d is None else str(d["original"]["dictionary_word_rate"])

    rep_docs = docs["repetition"] if docs else "n/a"
    rep_orig = docs["original"]["repetition"] if docs else "n/a"
    return f"""
Dictionary-word rate (`diffedit.training.text_metrics`: share of prose words, outside code, found in
`{dic["words_file"]}`) of rewrites from noise {rewrite_path(dic)} with the shipped generation config
({blocks_phrase(dic)}; no comparison with another demo was measured: `python -m
diffedit.training.compare_demos` adds one):

| | this model | the original text |
|---|---:|---:|
| dictionary-word rate, held-out documents | {cell(docs)} | {orig(docs)} |
| dictionary-word rate, held-out source (not from its corpus) | {cell(src)} | {orig(src)} |
| repetition (share of repeated word pairs), held-out documents | {rep_docs} | {rep_orig} |
"""


def blocks_phrase(dic: dict[str, Any]) -> str:
    """Which held-out blocks the dictionary figures read."""
    n = dic.get("heldout_documents", {}).get("blocks", "?")
    skip = dic.get("skipped_sweep_blocks", 0)
    if skip:
        return (
            f"{n} blocks of each set; the held-out documents' are the {n} after the {skip} the sampling "
            "sweep chose the sampler on"
        )
    return f"{n} blocks of each set"


def bold_higher(a: Any, b: Any) -> tuple[str, str]:
    """Two figures as table cells, the higher in bold."""
    if isinstance(a, int | float) and isinstance(b, int | float) and a != b:
        return (f"**{a}**", str(b)) if a > b else (str(a), f"**{b}**")
    return str(a), str(b)


def measured_comparison(res: dict[str, Any], comparison: dict[str, Any]) -> str:
    dic = res["dictionary"]
    first, split = comparison["previous_split"], comparison["heldout_split"]
    prev, ours = split["previous"], split["this"]

    def rate(f: dict[str, Any], key: str) -> str:
        if key + "_words" not in f:
            return "n/a"
        return f"{f[key + '_dictionary_word_rate']} ({f[key + '_words']:,} words)"

    def orig(key: str) -> str:
        return str(dic[key]["original"]["dictionary_word_rate"]) if key in dic else "n/a"

    def rep(f: dict[str, Any]) -> str:
        return str(f.get("heldout_documents_repetition", "n/a"))

    sources = ", ".join(f"`{s}`" for s in first["sources"])
    first_prev, first_this = bold_higher(first["previous"]["accuracy"], first["this"]["accuracy"])
    split_prev, split_this = bold_higher(prev["accuracy"], ours["accuracy"])
    return f"""
Against the first demo model, both measured here by `python -m diffedit.training.compare_demos` (each with
its own tokenizer, so one-pass accuracies compare the same documents, not the same tokens). Dictionary-word
rate (`diffedit.training.text_metrics`: share of prose words, outside code, found in
`{dic["words_file"]}`) of rewrites from noise {rewrite_path(dic)}, each model with its shipped
generation config, on the same held-out blocks with the same seeds ({blocks_phrase(dic)}):

| | first demo | this model | the original text |
|---|---:|---:|---:|
| one-pass accuracy at 50% noise, the first demo's held-out split ({first["documents"]} {sources} documents; \
{first["previous"]["examples"]:,} and {first["this"]["examples"]:,} examples) \
| {first_prev} | {first_this} | |
| one-pass accuracy at 50% noise, this model's held-out split ({split["documents"]} documents, \
{ours["accuracy_examples"]:,} examples drawn by seed) | {split_prev} | {split_this} | |
| dictionary-word rate, held-out documents | {rate(prev, "heldout_documents")} \
| **{rate(ours, "heldout_documents")}** | {orig("heldout_documents")} |
| dictionary-word rate, held-out source (not from either corpus) | {rate(prev, "heldout_source")} \
| **{rate(ours, "heldout_source")}** | {orig("heldout_source")} |
| repetition (share of repeated word pairs), held-out documents | {rep(prev)} | {rep(ours)} \
| {dic.get("heldout_documents", {}).get("original", {}).get("repetition", "n/a")} |
"""


def rewrite_path(figures: dict[str, Any]) -> str:
    """How the measured rewrites were made (results from before ``rewrite_path`` existed: free form)."""
    if figures.get("rewrite_path") == "shaped":
        return (
            "as the editor makes them (`diffedit.rewrites.build_job`, then `Engine.rewrite`: each block "
            "keeps its Markdown shape)"
        )
    return "through `Engine.rewrite` alone (free form: the model may write any blocks in the target's place)"


def latency_section(checkpoint: Path) -> str:
    """Engine time of a paragraph rewrite (``benchmarks/rewrite_latency.py --out``), if it was measured."""
    lat = read_optional(checkpoint / LATENCY_FILE)
    if lat is None:
        return ""
    line = (
        "\n\nEngine time of a paragraph rewrite as the editor runs it "
        "(`python benchmarks/rewrite_latency.py`: {paragraphs} held-out paragraphs through `Engine.rewrite`, "
        "default settings, {machine}, {device}): "
        "median **{total_s_median} s**, max {total_s_max} s, {steps_median:g} steps (median) of "
        "{step_ms_median} ms."
    ).format(**lat)
    versus = lat.get("versus")
    if versus:
        line += (
            " The previous demo (`{model}`) on the same paragraphs in the same run, interleaved: median "
            "{total_s_median} s, "
            "{steps_median:g} steps of {step_ms_median} ms (ratio {ratio})."
        ).format(ratio=lat["median_ratio"], **versus)
    return line


def examples_phrase(res: dict[str, Any]) -> str:
    """Which held-out examples the one-pass accuracy read: all of them, or a fixed-seed draw."""
    total, used = res["heldout_examples"], res.get("accuracy_examples", res["heldout_examples"])
    if used >= total:
        return f"all {total:,} held-out examples"
    return f"{used:,} of the {total:,} held-out examples (drawn by seed {res.get('accuracy_seed', 0)})"


def rewrites_section(res: dict[str, Any]) -> str:
    dic = res.get("dictionary")
    if not dic or not dic.get("rewrites"):
        return ""
    parts = [
        f"## Rewrites of held-out blocks\n\n{len(dic['rewrites'])} blocks drawn by "
        f"`random.Random({dic['rewrite_seed']})` from the blocks the dictionary-word rate was measured on, "
        f"rewritten from noise {rewrite_path(dic)} with the shipped generation config (seed = the block's "
        "index), verbatim:\n"
    ]
    for i, r in enumerate(dic["rewrites"], 1):
        where = "held-out source" if r["set"] == "heldout_source" else "held-out document"
        rewritten = quote(r["rewritten"]) if r["rewritten"].strip() else "> (empty)"
        parts.append(f"**{i}** ({where}). Before:\n\n{quote(r['original'])}\n\nAfter:\n\n{rewritten}\n")
    return "\n".join(parts) + "\n"


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
    summary = read_optional(data_dir / "corpus" / "sources.json")
    origins = {d.origin for d in train_docs}
    python_only = origins <= {"python"}
    seen = (
        "has seen only Python\ndocumentation"
        if python_only
        else f"has seen {len(origins)} sources of\ntechnical and dictionary prose"
    )
    if python_only or summary is None:
        data_intro = PYTHON_DATA.format(
            source_package=SOURCE_PACKAGE,
            converter=CONVERTER,
            total=len(train_docs) + len(heldout_docs),
            train=len(train_docs),
            heldout=len(heldout_docs),
            heldout_list=", ".join(f"`{s}`" for s in heldout_docs),
        )
    else:
        data_intro = corpus_section(summary)
    limits_first = (
        "Trained only on Python documentation: other topics come out as Python-documentation-flavoured text."
        if python_only
        else "Trained on technical manuals and dictionary glosses: other topics come out in their style."
    )
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

**It is a demo, not a writing assistant.** It does not follow instructions, {seen}, and produces \
fluent-looking but often wrong or incoherent text.

## Data and licences

{data_intro}
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

Training curve (`{CURVE_FILE}`, drawn in `{CURVE_FIGURE}`; accuracy on a fixed subset of 384 held-out
examples):

![Training curve: smoothed loss and held-out one-pass accuracy by step]({CURVE_FIGURE})

{curve_table(checkpoint / CURVE_FILE)}

## Evaluation

`python -m diffedit.training.evaluate_demo` on {examples_phrase(res)}
({res["renoised_positions"]:,} re-noised positions): re-noise 50% of each target canvas's non-pad positions
with uniform random tokens (the rest kept, context on both sides given) and count the positions restored
exactly by the argmax of **one** forward pass.

| | one-pass accuracy at 50% noise |
|---|---:|
| diffedit-demo | **{res["model_accuracy"]:.4f}** |
| most frequent training-target token (`{res["baseline_token"]}`) | {res["baseline_accuracy"]:.4f} |
| ratio | **{res["ratio"]}x** |

{comparison_section(res, read_optional(checkpoint / COMPARISON_FILE))}
{sampler_section(checkpoint, res)}

Speed: `model.generate` of one {cfg["canvas_length"]}-token canvas (prompt budget {args["budget"]}, the
shipped sampler, adaptive stop) takes a median of **{res["generate_median_s"]} s** on
{res.get("cpu", "this project's 2-core CPU machine")} in fp32 with {res["torch_threads"]} torch thread(s)
({len(res["generate_seconds"])} paragraphs: {res["generate_seconds"]} s).{latency_section(checkpoint)}

## Full regenerations of held-out blocks

The target regenerated from random noise with the shipped generation config (first {len(res["regenerations"])}
entries of `heldout_sample.jsonl`, seed = index):

{samples_section(res)}
{rewrites_section(res)}## Limits

- {limits_first}
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
    figure = curve_svg(read_curve(args.checkpoint / CURVE_FILE))
    (args.checkpoint / CURVE_FIGURE).write_text(figure, encoding="utf-8")
    print(f"wrote {args.checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()
