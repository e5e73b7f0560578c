"""vLLM's request and answer shapes: our requests checked against vLLM's documented fields, our server's
checks against vLLM's validation.

The fixture ``tests/fixtures/vllm_structured_diffusion_request.json`` is written from vLLM's documentation:
vllm-project/vllm, ``examples/features/structured_diffusion/README.md`` at commit 02bd2191d211 (the table of
``extra_args`` / ``vllm_xargs`` fields) and its example client ``structured_server.py`` at commit 34d9abbd213c
(``one_read_continuation``: ``POST /v1/completions`` with the prompt as token ids; answers read from
``choices[0].logprobs`` as ``token_id:N``); the checks from vLLM's ``validate_diffusion_sampling_params``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffedit.document.blocks import parse_blocks
from diffedit.engine.types import GenerationSettings
from diffedit.engine.vllm_client import Completion, LocalModelFiles, VllmEngine
from diffedit.engine.vllm_wire import XARGS, completion_body, parse_completion, parse_completion_request
from diffedit.engine.wire import WireError
from diffedit.rewrites import build_job

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "vllm_structured_diffusion_request.json").read_text("utf-8")
)
DOC = "# Title\n\nFirst paragraph with some words in it.\n\n- item a\n- item b\n\nLast paragraph.\n"


def shape(value: Any) -> Any:
    """A JSON value's shape: its type, lists as the shape of their items, objects key by key."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(v)) for v in value})]
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


class Recording(VllmEngine):
    """The real client with its HTTP call replaced: records each body, answers the seed canvas back."""

    def __init__(self, files: LocalModelFiles) -> None:
        super().__init__("http://127.0.0.1:1", files, chunk_steps=2)
        self.name = "served-model"
        self.bodies: list[dict[str, Any]] = []

    def complete(self, body: dict[str, Any], tally: Any = None) -> Completion:
        self.bodies.append(json.loads(json.dumps(body)))
        ids = tuple(body["vllm_xargs"]["diffusion_seed_canvas"])
        if tally is not None:
            tally.requests += 1
        return Completion(ids, (-0.5,) * len(ids), tuple({t: -0.5} for t in ids), "length", "")


@pytest.fixture(scope="module")
def files() -> LocalModelFiles:
    return LocalModelFiles.load()  # the bundled demo model's tokenizer and config, no weights


def check_against_the_fixture(body: dict[str, Any], canvas_length: int) -> None:
    documented = FIXTURE["request"] | FIXTURE["standard_fields"]
    for key, value in body.items():
        assert key in documented, f"{key} is not a field vLLM's example sends"
        if key != "vllm_xargs":
            assert shape(value) == shape(documented[key]), key
    xargs = body.get("vllm_xargs", {})
    for key, value in xargs.items():
        assert key in documented["vllm_xargs"] and key in XARGS, f"{key} is not a documented diffusion field"
        assert shape(value) == shape(documented["vllm_xargs"][key]), key
    seed = xargs.get("diffusion_seed_canvas")
    if seed is not None:
        assert len(seed) == canvas_length  # "exactly canvas_length ids"
    assert all(0 <= p < canvas_length for p in xargs.get("diffusion_pinned", []))
    assert "diffusion_pinned" not in xargs or seed is not None  # pinned needs a seed canvas
    assert xargs.get("diffusion_max_steps", 1) > 0


def test_the_fixture_itself_passes_vllm_s_checks_as_our_server_runs_them() -> None:
    """Our server's validation accepts vLLM's documented request (with its served canvas and vocabulary)."""
    request = FIXTURE["request"]
    parsed = parse_completion_request(request, FIXTURE["canvas_length"], 262144)
    assert parsed.pinned == tuple(request["vllm_xargs"]["diffusion_pinned"])
    assert parsed.read_only and parsed.constrained and parsed.max_steps == 2
    assert parse_completion(FIXTURE["response"]).token_ids[3] == 236770


def test_a_shape_true_rewrite_sends_vllm_s_fields_in_vllm_s_shapes(files: LocalModelFiles) -> None:
    block = parse_blocks(DOC)[1]
    at = DOC.index("some words")
    job = build_job(DOC, block.start, block.end, GenerationSettings(steps=4, seed=3), keeps=[(at, at + 10)])
    engine = Recording(files)
    engine.rewrite(job, on_frame=lambda f: None)  # chunks of 2 steps: requests after the first re-seed
    assert len(engine.bodies) >= 2
    for body in engine.bodies:
        check_against_the_fixture(body, files.canvas_length)
        assert body["prompt"] == engine.bodies[0]["prompt"]  # the document context, as token ids
    first = engine.bodies[0]["vllm_xargs"]
    assert first["diffusion_max_steps"] == 2
    # The kept words' tokens are held: pinned, with their ids laid into the seed canvas.
    laid = [first["diffusion_seed_canvas"][p] for p in first["diffusion_pinned"]]
    assert "some words" in files.tokenizer.decode(laid, skip_special_tokens=True)


def test_a_refine_seeds_the_original_and_the_confidence_view_reads_only(files: LocalModelFiles) -> None:
    block = parse_blocks(DOC)[1]
    job = build_job(DOC, block.start, block.end, GenerationSettings(steps=8, seed=3, strength=0.25))
    engine = Recording(files)
    engine.rewrite(job)
    seed = engine.bodies[0]["vllm_xargs"]["diffusion_seed_canvas"]
    original = files.tokenizer.encode(job.request.target, add_special_tokens=False)
    assert sum(a == b for a, b in zip(seed, original, strict=False)) >= 0.6 * len(original)
    assert engine.bodies[0]["vllm_xargs"]["diffusion_max_steps"] == 2  # enters late: 8 x 0.25
    for body in engine.bodies:
        check_against_the_fixture(body, files.canvas_length)

    engine.bodies.clear()
    engine.inspect(job.request, top_k=3)
    (read,) = engine.bodies
    check_against_the_fixture(read, files.canvas_length)
    assert read["vllm_xargs"]["diffusion_read_only"] is True
    assert read["vllm_xargs"]["diffusion_max_steps"] == 1
    assert read["vllm_xargs"]["diffusion_seed_canvas"][: len(original)] == original


def test_completion_bodies_omit_what_is_not_asked_for() -> None:
    body = completion_body("m", [1, 2], 8, None)
    assert "vllm_xargs" not in body and "seed" not in body
    check_against_the_fixture(body, 8)


@pytest.mark.parametrize(
    ("xargs", "message"),
    [
        ({"diffusion_seed_canvas": [0] * 7 + [4096]}, r"ids must be in \[0, 4096\)"),
        ({"diffusion_seed_canvas": [0] * 7}, "exactly 8 ids, got 7"),
        ({"diffusion_seed_canvas": [0] * 7 + [True]}, "list of token ids"),
        ({"diffusion_pinned": [0]}, "needs a diffusion_seed_canvas"),
        ({"diffusion_seed_canvas": [0] * 8, "diffusion_pinned": [8]}, "inside the canvas"),
        ({"diffusion_seed_canvas": [0] * 8, "diffusion_pinned": "0,1"}, "list of canvas positions"),
        ({"diffusion_max_steps": 0}, "positive integer"),
        ({"diffusion_max_steps": True}, "positive integer"),
        ({"diffusion_read_only": 2}, "boolean"),
        ({"diffusion_constrained": 1}, "needs logprob_token_ids"),
        ({"diffusion_canvas_length": 9}, "no larger than the served canvas"),
        ({"diffusion_typo": 1}, "unknown diffusion fields in vllm_xargs: diffusion_typo"),
    ],
)
def test_the_server_refuses_what_vllm_refuses_naming_the_field(xargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WireError, match=message):
        parse_completion_request({"prompt": [1, 2, 3], "vllm_xargs": xargs}, 8, 4096)


def test_booleans_may_come_as_0_or_1_and_read_only_caps_the_output() -> None:
    request = parse_completion_request(
        {"prompt": [1], "max_tokens": 100, "vllm_xargs": {"diffusion_read_only": 1}}, 8, 4096
    )
    assert request.read_only and request.ignore_eos and request.max_tokens == 8
