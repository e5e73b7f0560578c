"""The graphed canvas loop's logic, run on the CPU with a stand-in for the CUDA operations.

Capture and replay themselves need a GPU (``benchmarks/gpu_step.py`` runs them); what is checked here is
everything around them: the step body, the freeze once the stop flag is set, the flag read one step late,
frames copied at the caller's rate and the settled canvas always delivered last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from diffedit.engine import cuda_graph
from diffedit.engine import denoise as denoise_mod
from diffedit.engine.denoise import DenoiseOptions, StepView, denoise
from diffedit.engine.loader import load_model
from diffedit.engine.sampling import SamplerConfig


class _Done:
    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass


class CpuOps(cuda_graph.CudaOps):
    """Runs every 'captured' step eagerly; events are complete at once; pinned memory is plain memory."""

    def __init__(self) -> None:
        self.captures = 0

    def side_stream_step(self, fn: Callable[[], None], device: torch.device) -> None:
        fn()

    def registers_generators(self) -> bool:
        return True

    def capture(self, fn: Callable[[], None], generator: torch.Generator | None) -> Callable[[], None]:
        self.captures += 1
        return fn

    def event(self) -> Any:
        return _Done()

    def pinned(self, like: torch.Tensor) -> torch.Tensor:
        return torch.empty(like.shape, dtype=like.dtype)

    def synchronize(self) -> None:
        pass


@pytest.fixture(scope="module")
def demo() -> Any:
    return load_model(None, device="cpu")


@pytest.fixture
def graphs_on_cpu(monkeypatch: pytest.MonkeyPatch) -> CpuOps:
    ops = CpuOps()
    monkeypatch.setattr(denoise_mod, "graphs_supported", lambda device: True)
    monkeypatch.setattr(cuda_graph, "CudaOps", lambda: ops)
    return ops


def _prompt(demo: Any) -> list[int]:
    text = "The module provides functions for working with paths.\n\n"
    return [demo.tokenizer.bos_token_id, *demo.tokenizer.encode(text, add_special_tokens=False)]


def _run(demo: Any, cfg: SamplerConfig, seed: int, views: list[StepView] | None = None, **kw: Any) -> Any:
    tok = demo.tokenizer
    options = DenoiseOptions(
        cfg, frozenset({tok.eos_token_id}), tok.pad_token_id, **{"max_canvases": 2, **kw}
    )
    generator = torch.Generator().manual_seed(seed)
    return denoise(demo.model, _prompt(demo), options, generator, views.append if views is not None else None)


def test_graphed_loop_stops_early_and_delivers_the_settled_canvas_last(
    demo: Any, graphs_on_cpu: CpuOps
) -> None:
    # the demo's shipped sampler (bound 0.3, t 0.05-0.15), a loose confidence: it settles in about 8 steps
    cfg = SamplerConfig(24, 0.3, 0.05, 0.15, 1, 0.5)
    views: list[StepView] = []
    out = _run(demo, cfg, seed=3, views=views)
    assert graphs_on_cpu.captures >= 1
    assert out.graphed is True
    assert out.forwards < 24 * out.canvases  # the stop flag, read one step late, still stops the loop
    per_canvas: dict[int, list[StepView]] = {}
    for v in views:
        per_canvas.setdefault(v.canvas_index, []).append(v)
    first = per_canvas[0]
    steps = [v.step for v in first]
    assert steps == sorted(set(steps))
    # The last frame of the final canvas is the settled canvas: the tokens the loop returned.
    last = per_canvas[max(per_canvas)][-1]
    got = out.tokens[-len(last.argmax) :]
    end = [i for i, t in enumerate(last.argmax.tolist()) if t == demo.tokenizer.eos_token_id]
    if end:
        assert got[: end[0] + 1] == last.argmax.tolist()[: end[0] + 1]
    else:
        assert got == last.argmax.tolist()


def test_frames_follow_the_callers_rate(demo: Any, graphs_on_cpu: CpuOps) -> None:
    cfg = SamplerConfig(12, 0.1, 0.1, 0.3, 1, 1e-30)  # no early stop
    every: list[StepView] = []
    _run(demo, cfg, seed=1, views=every, max_canvases=1)
    rare: list[StepView] = []
    _run(demo, cfg, seed=1, views=rare, max_canvases=1, frame_interval_s=3600.0)
    assert [v.step for v in every] == list(range(1, 13))
    assert [v.step for v in rare] == [1, 12]  # the first copy, then only the settled canvas


def test_a_step_after_the_stop_changes_nothing(demo: Any, graphs_on_cpu: CpuOps) -> None:
    from diffedit.engine.decoder import CanvasDecoder
    from diffedit.engine.static_cache import StaticCanvasCache
    from tests.helpers.context import encode_context

    model = demo.model
    cache, masks, positions = encode_context(model, torch.tensor([_prompt(demo)]))
    with torch.no_grad():
        length = int(model.config.canvas_length)
        canvas = torch.randint(0, 4096, (1, length))
        gen = torch.Generator().manual_seed(0)
        cfg = SamplerConfig(8, 0.1, 0.1, 0.3, 1, 1e-30)
        decoder = CanvasDecoder(model, masks, cache, positions)
        run = cuda_graph.GraphedCanvas(decoder, canvas, 8, cfg, gen, None)
        with StaticCanvasCache(cache, length).installed(model):
            run._step(first=True)
            run._step(first=False)
            state = run.state
            assert not bool(state.done)
            state.done.fill_(True)
            before = [t.clone() for t in state]
            run._step(first=False)
    for name, a, b in zip(state._fields, before, state, strict=True):
        assert torch.equal(a, b), name


def test_the_graphed_loop_runs_the_compiled_step_kernels(demo: Any, graphs_on_cpu: CpuOps) -> None:
    cfg = SamplerConfig(8, 0.1, 0.1, 0.3, 1, 1e-30)
    out = _run(demo, cfg, seed=2, max_canvases=1, compile_step=True)
    assert graphs_on_cpu.captures == 1
    assert out.graphed is True
    assert out.compiled is True, out.compile_error
    assert out.forwards == 8


def test_a_sampler_that_fails_to_compile_falls_back_with_the_layers(
    demo: Any, graphs_on_cpu: CpuOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from diffedit.engine.fused_step import PLAIN

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no Triton for this GPU")

    kernels = dataclasses.replace(PLAIN, sample=broken, compiled=True)  # only the sampler fails
    monkeypatch.setattr(denoise_mod, "compiled_kernels", lambda: kernels)
    cfg = SamplerConfig(8, 0.1, 0.1, 0.3, 1, 1e-30)
    out = _run(demo, cfg, seed=2, max_canvases=1, compile_step=True)
    plain = _run(demo, cfg, seed=2, max_canvases=1)
    assert out.compiled is False and out.compile_error == "RuntimeError: no Triton for this GPU"
    assert out.forwards == 8 and out.graphed is True
    assert out.tokens == plain.tokens  # the plain functions are the plain loop, bit for bit


def test_eager_and_graphed_loops_write_the_same_constrained_tokens(
    demo: Any, graphs_on_cpu: CpuOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine import sampling
    from diffedit.engine.constraints import TokenClasses, compile_templates
    from diffedit.engine.types import BlockTemplate, FreeText, HeldText

    tok = demo.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id
    classes = TokenClasses(tok, int(demo.model.config.text_config.vocab_size), {eos, pad})
    cell = FreeText("cell", " two ", frozenset("\n|"), (), (1.0, 1.0))
    templates = [
        BlockTemplate(
            "heading", (HeldText("## "), FreeText("heading", "Working with paths", frozenset("\n")))
        ),
        BlockTemplate(
            "table", (HeldText("| a | b |\n| - | - |\n|"), cell, HeldText("|"), cell, HeldText("|")), "\n\n"
        ),
    ]
    plan = compile_templates(templates, tok, classes, int(demo.model.config.canvas_length), eos, pad)
    cfg = SamplerConfig(12, 0.1, 0.4, 0.8, 1, 0.005)
    options = DenoiseOptions(cfg, frozenset({eos}), pad, runs=tuple(plan.runs))
    # The graphed step draws by the exponential race; the eager loop draws so too here, from the same stream.
    monkeypatch.setattr(sampling, "draw_method", lambda device: "race")
    graphed = denoise(demo.model, _prompt(demo), options, torch.Generator().manual_seed(4))
    monkeypatch.setattr(denoise_mod, "graphs_supported", lambda device: False)
    eager = denoise(demo.model, _prompt(demo), options, torch.Generator().manual_seed(4))
    assert graphed.graphed is True and eager.graphed is None
    assert graphed.runs_kept == eager.runs_kept
    assert len(graphed.runs_kept) == 2  # the heading's run, then the table's cells
    held_pipe = tok.encode("|", add_special_tokens=False)
    table = plan.runs[1]
    second = table.slots[1]
    assert graphed.runs_kept[1][second.start - len(held_pipe) : second.start] == held_pipe
