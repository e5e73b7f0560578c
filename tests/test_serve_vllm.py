"""The vLLM-protocol client against ``diffedit serve`` in a subprocess on 127.0.0.1 (the bundled demo model):
shape-true held text and kept words survive, the same seed gives the same result, the confidence view reads
what the in-process engine reads, ``--protocol vllm`` on the CLI, and vLLM's request checks as 400s."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.document.blocks import parse_blocks
from diffedit.engine.connect import connect_server
from diffedit.engine.types import Frame, GenerationSettings, RewriteJob
from diffedit.engine.vllm_client import VllmEngine
from diffedit.rewrites import build_job
from tests.test_serve import DOC, Served, start_server, stop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_server(tmp_path_factory.mktemp("serve-vllm"))
    yield served
    stop(served)


def shaped_job(seed: int = 5, steps: int = 4) -> RewriteJob:
    """Heading, paragraph (keeping "some words") and the first list item: held "# ", the blank lines and
    "- ", kept words in a slot."""
    blocks = parse_blocks(DOC)
    at = DOC.index("some words")
    return build_job(
        DOC,
        blocks[0].start,
        blocks[2].end,
        GenerationSettings(steps=steps, seed=seed),
        keeps=[(at, at + len("some words"))],
    )


def vllm_engine(url: str, chunk_steps: int, served_frames: bool) -> VllmEngine:
    engine = connect_server(url, "vllm", chunk_steps=chunk_steps)
    assert isinstance(engine, VllmEngine)
    engine.served_frames = served_frames  # False: as against vLLM, which streams no steps
    return engine


def test_shape_true_held_text_and_kept_words_survive_and_the_seed_repeats(server: Served) -> None:
    job = shaped_job()
    results = []
    for served_frames, chunk in ((True, 0), (False, 2), (False, 2)):
        engine = vllm_engine(server.url, chunk, served_frames)
        frames: list[Frame] = []
        result = engine.rewrite(job, on_frame=frames.append)
        heading, paragraph, item = result.text.split("\n\n")  # the held gaps between the blocks
        assert heading.startswith("# ") and item.startswith("- "), result.text  # the held markers
        assert "some words" in paragraph  # the kept words, verbatim
        assert frames
        if not served_frames:  # a chunk of 2 steps per request, each frame a canvas the server computed
            assert engine.last_requests > result.canvases
            assert {f.step for f in frames} <= {2, 4}
            assert all(f.accepted[0] for f in frames)  # each run's first position is held text: pinned
        results.append(result)
    assert results[1].token_ids == results[2].token_ids and results[1].text == results[2].text  # same seed
    other = vllm_engine(server.url, 2, False).rewrite(shaped_job(seed=6), on_frame=lambda f: None)
    assert other.token_ids != results[1].token_ids  # the seed matters


def test_the_confidence_view_over_vllm_reads_what_the_engine_reads(server: Served) -> None:
    from diffedit.engine.engine import Engine

    block = parse_blocks(DOC)[1]
    job = build_job(DOC, block.start, block.end, GenerationSettings())
    here = Engine.load(device="cpu").inspect(job.request, top_k=3)
    there = vllm_engine(server.url, 0, False).inspect(job.request, top_k=3)
    assert [(r.token_id, r.start, r.end) for r in there] == [(r.token_id, r.start, r.end) for r in here]
    assert [r.p for r in there] == pytest.approx([r.p for r in here], abs=1e-4)
    assert [[t for t, _ in r.top] for r in there] == [[t for t, _ in r.top] for r in here]


def test_the_cli_rewrites_over_the_vllm_protocol(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = tmp_path / "doc.md"
    md.write_text(DOC, encoding="utf-8")
    args = ["rewrite", str(md), "--block", "2", "--seed", "3", "--steps", "3", "--keep", "some words"]
    assert main([*args, "--server", server.url, "--protocol", "vllm", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert "some words" in first["replacement"]
    assert main([*args, "--server", server.url, "--protocol", "vllm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replacement"] == first["replacement"]
    assert main([*args, "--server", server.url, "--protocol", "diffedit", "--tokenizer", "x"]) == 2
    assert "--tokenizer is for --protocol vllm" in capsys.readouterr().err


def post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url + "/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_server_checks_vllm_bodies_and_holds_pinned_positions(server: Served) -> None:
    code, answer = post(server.url, {"prompt": [2, 5, 6], "vllm_xargs": {"diffusion_pinned": [0]}})
    assert code == 400
    assert "diffusion_pinned needs a diffusion_seed_canvas" in str(answer["error"])
    code, answer = post(server.url, {"prompt": [2, 5, 6], "vllm_xargs": {"diffusion_max_steps": 0}})
    assert code == 400 and "diffusion_max_steps must be a positive integer" in str(answer["error"])

    canvas = [(7 * i) % 4000 + 10 for i in range(128)]
    pinned = list(range(0, 128, 3))
    body = {
        "prompt": [2, 5, 6],
        "max_tokens": 128,
        "seed": 1,
        "ignore_eos": True,
        "logprobs": 0,
        "return_tokens_as_token_ids": True,
        "vllm_xargs": {"diffusion_seed_canvas": canvas, "diffusion_pinned": pinned, "diffusion_max_steps": 3},
    }
    code, answer = post(server.url, body)
    assert code == 200
    choice = answer["choices"][0]  # type: ignore[index]
    tokens = [int(t.split(":")[1]) for t in choice["logprobs"]["tokens"]]
    assert len(tokens) == 128
    assert [tokens[p] for p in pinned] == [canvas[p] for p in pinned]  # held on every step
    assert sum(tokens[p] != canvas[p] for p in range(128) if p not in pinned) > 0  # the rest was denoised


def test_stop_closes_the_stream_and_the_server_cancels_the_request(server: Served) -> None:
    from diffedit.engine.types import Cancelled, CancelToken

    engine = vllm_engine(server.url, 0, True)  # the server's step stream
    cancel = CancelToken()
    seen: list[int] = []

    def on_frame(frame: Frame) -> None:
        seen.append(frame.step)
        cancel.cancel()  # Stop after the first real canvas

    block = parse_blocks(DOC)[1]
    job = build_job(DOC, block.start, block.end, GenerationSettings(steps=200, seed=1))
    with pytest.raises(Cancelled):
        engine.rewrite(job, on_frame=on_frame, cancel=cancel)
    assert seen == [1]
    assert engine.rewrite(shaped_job(steps=1)).steps == 3  # the server goes on serving (3 canvases)
    assert "completion cancelled: the client closed the stream" in server.log_text()
