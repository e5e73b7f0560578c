"""The GPU canvas loop: the whole denoising step captured once per canvas as a CUDA graph and replayed.

One step is a decoder forward plus the sampler (temperature, log-softmax, entropy-bound acceptance, the
exponential-race draw, re-noising, the stability and confidence test). Everything lives in fixed device
buffers, so the step has no host synchronisation and no allocation, and is captured once per canvas (the
context, and so the KV buffer, grows between canvases) and replayed for the remaining steps.

The host never waits on the step it just launched:

* The stop flag is copied into pinned memory after each step and read one step late: step k+1 is already
  queued when the host waits for step k's flag, so the GPU never idles. Once the flag is set a step leaves
  every buffer as it was (the update is a ``where`` on the flag), so the one step run past the stop changes
  nothing and costs one step's time.
* Frames are copied (argmax, accepted, entropy: a few KB) into pinned buffers right after the step on the
  same stream, and handed to the observer when their copy event has completed, at most one copy in flight
  and no more often than ``frame_interval_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from diffedit.engine.decoder import CanvasDecoder
from diffedit.engine.sampling import (
    CanvasConstraints,
    SamplerConfig,
    StepState,
    empty_history,
    race_noise,
    uniform_canvas,
)

MIN_GRAPH_STEPS = 4  # below this, capturing costs more than it saves: the eager loop runs instead


def graphs_supported(device: torch.device) -> bool:
    return device.type == "cuda" and hasattr(torch.cuda, "CUDAGraph")


class CudaOps:
    """The device operations the loop needs, in one place (tests run the loop with a CPU stand-in)."""

    def side_stream_step(self, fn: Callable[[], None], device: torch.device) -> None:
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)

    def registers_generators(self) -> bool:
        """Whether a graph can draw from a job's own generator (torch 2.5+), not just the default one."""
        return hasattr(torch.cuda.CUDAGraph, "register_generator_state")

    def capture(self, fn: Callable[[], None], generator: torch.Generator | None) -> Callable[[], None]:
        """``fn`` captured as a graph; returns its replay. Raises RuntimeError where capture fails."""
        graph = torch.cuda.CUDAGraph()
        if generator is not None:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            fn()
        return graph.replay

    def event(self) -> Any:
        event = torch.cuda.Event()
        event.record()
        return event

    def pinned(self, like: torch.Tensor) -> torch.Tensor:
        return torch.empty(like.shape, dtype=like.dtype).pin_memory()

    def synchronize(self) -> None:
        torch.cuda.current_stream().synchronize()


@dataclass
class CanvasRun:
    argmax: torch.Tensor  # (canvas_length,) the final argmax canvas, on the device
    forwards: int
    step_s: list[float]
    graphed: bool  # False where capture failed and the steps ran eagerly


class GraphedCanvas:
    """One canvas's steps: the first eagerly (no self-conditioning yet), the second as the graph's warm-up,
    then capture and replay. The step is the decoder's forward and its sampler
    (:func:`~diffedit.engine.sampling.sample_in_place`), plain or compiled as the decoder's layers are."""

    def __init__(
        self,
        decoder: CanvasDecoder,
        start: torch.Tensor,
        first_step: int,
        cfg: SamplerConfig,
        generator: torch.Generator,
        constraints: CanvasConstraints | None,
    ) -> None:
        self.ops = CudaOps()
        self.decoder = decoder
        self.cfg = cfg
        self.constraints = constraints
        self.generator: torch.Generator | None = generator
        self.first_step = first_step
        device, shape = start.device, tuple(start.shape)
        # The state a step reads and writes, at fixed addresses.
        self.state = StepState(
            canvas=start.clone(),
            self_cond=torch.zeros((*shape, decoder.vocab_size), dtype=decoder.self_cond_dtype, device=device),
            argmax=torch.zeros(shape, dtype=torch.long, device=device),
            accepted=torch.zeros(shape, dtype=torch.bool, device=device),
            entropy=torch.zeros(shape, dtype=torch.float32, device=device),
            history=empty_history(cfg, shape, device),
            remaining=torch.full((), first_step, dtype=torch.int32, device=device),
            done=torch.zeros((1,), dtype=torch.bool, device=device),
        )
        self.graphed = True

    # ------------------------------------------------------------ the step

    def _step(self, first: bool) -> None:
        state = self.state
        logits = self.decoder(state.canvas, None if first else state.self_cond)
        # The random draws come from the job's generator, outside the (possibly compiled) sampler, in the
        # eager loop's order: the race's noise, then the re-noising tokens.
        noise = race_noise(logits, self.generator)
        fresh = uniform_canvas(
            tuple(state.canvas.shape), self.decoder.vocab_size, self.generator, logits.device
        )
        self.decoder.sample(logits, noise, fresh, self.constraints, self.cfg, state)

    # ------------------------------------------------------------ the loop

    def run(
        self,
        on_step: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None,
        check_cancel: Callable[[], None],
        frame_interval_s: float = 0.0,
    ) -> CanvasRun:
        total = self.first_step
        step_s: list[float] = []
        frames = _FramePipe(on_step, frame_interval_s, self)

        t = time.perf_counter()
        self._step(first=True)
        frames.after_step(1)
        step_s.append(time.perf_counter() - t)
        if total == 1 or bool(self.state.done):
            return self._finish(1, step_s, frames)

        # Warm-up of the captured body on a side stream (a real step: the state advances).
        check_cancel()
        t = time.perf_counter()
        self.ops.side_stream_step(lambda: self._step(first=False), self.state.canvas.device)
        frames.after_step(2)
        if total == 2 or bool(self.state.done):  # one host read per canvas before capturing
            step_s.append(time.perf_counter() - t)
            return self._finish(2, step_s, frames)

        replay: Callable[[], None]
        if not self.ops.registers_generators():
            # Older torch: the graph draws from the device's default generator, seeded from the job's.
            seed = int(
                torch.randint(0, 2**62, (1,), generator=self.generator, device=self.state.canvas.device)
            )
            torch.cuda.manual_seed(seed)
            self.generator = None
        try:
            replay = self.ops.capture(lambda: self._step(first=False), self.generator)
        except RuntimeError:  # a kernel that cannot be captured: the same step, launched eagerly
            self.ops.synchronize()
            self.graphed = False
            replay = lambda: self._step(first=False)  # noqa: E731
        step_s.append(time.perf_counter() - t)  # the warm-up step and the capture

        flags = [self.ops.pinned(self.state.done) for _ in range(2)]
        pending: list[tuple[Any, torch.Tensor]] = []
        effective = total
        last = time.perf_counter()
        for step in range(3, total + 1):
            check_cancel()
            replay()
            frames.after_step(step)
            slot = flags[step % 2]
            slot.copy_(self.state.done, non_blocking=True)
            pending.append((self.ops.event(), slot))
            if len(pending) > 1:  # read the previous step's flag: this step is already queued behind it
                prev_event, prev_slot = pending.pop(0)
                prev_event.synchronize()
                now = time.perf_counter()
                step_s.append(now - last)
                last = now
                if bool(prev_slot[0]):
                    effective = step - 1  # this step ran on a finished canvas and changed nothing
                    break
        self.ops.synchronize()
        if effective == total:
            step_s.append(time.perf_counter() - last)
        return self._finish(effective, step_s, frames)

    def _finish(self, steps: int, step_s: list[float], frames: _FramePipe) -> CanvasRun:
        self.ops.synchronize()
        frames.flush(steps)
        frames.final(steps)
        return CanvasRun(self.state.argmax[0], steps, step_s, self.graphed)


class _FramePipe:
    """Asynchronous frame copies into pinned memory; delivered once their copy has completed."""

    def __init__(
        self,
        sink: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None,
        interval_s: float,
        canvas: GraphedCanvas,
    ) -> None:
        self.sink = sink
        self.interval_s = interval_s
        self.canvas = canvas
        self.last_start: float | None = None
        self.delivered = 0
        self.in_flight: tuple[int, Any] | None = None
        if sink is not None:
            self.host = tuple(canvas.ops.pinned(t) for t in self._shown())

    def after_step(self, step: int) -> None:
        if self.sink is None:
            return
        self._deliver_if_ready()
        now = time.perf_counter()
        due = self.last_start is None or now - self.last_start >= self.interval_s
        if self.in_flight is None and due:
            for host, dev in zip(self.host, self._shown(), strict=True):
                host.copy_(dev, non_blocking=True)
            self.in_flight = (step, self.canvas.ops.event())
            self.last_start = now

    def _deliver_if_ready(self, wait: bool = False) -> None:
        if self.in_flight is None or self.sink is None:
            return
        step, event = self.in_flight
        if wait:
            event.synchronize()
        elif not event.query():
            return
        self.in_flight = None
        argmax, accepted, entropy = self.host
        self.delivered = step
        self.sink(step, argmax[0].clone(), accepted[0].clone(), entropy[0].clone())

    def flush(self, last_step: int) -> None:
        """Deliver the copy in flight, unless it is of the step run past the stop (the settled canvas
        again, under a later number): :meth:`final` delivers that under its own."""
        if self.in_flight is not None and self.in_flight[0] > last_step:
            self.in_flight[1].synchronize()
            self.in_flight = None
        self._deliver_if_ready(wait=True)

    def final(self, step: int) -> None:
        """The settled canvas, if the last frame delivered was an earlier step (the loop has synchronised)."""
        if self.sink is None or self.delivered == step:
            return
        self.delivered = step
        argmax, accepted, entropy = self._shown()
        self.sink(step, argmax[0].cpu(), accepted[0].cpu(), entropy[0].cpu())

    def _shown(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The device buffers a frame is made of."""
        state = self.canvas.state
        return state.argmax, state.accepted, state.entropy
