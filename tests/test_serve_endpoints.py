"""``--alternatives`` and ``inspect`` over ``--server``, the model facts, and the tokenizer check.

A real ``diffedit serve`` on 127.0.0.1 in a subprocess (the bundled demo model), as in tests/test_serve.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffedit.engine.remote import RemoteEngine, ServerFacts, ServerModelChanged
from diffedit.engine.types import AlternativesFrame, Cancelled, CancelToken, EditRequest, EngineError
from tests.helpers.cli import run_cli
from tests.test_serve import DOC, KEY, Served, paragraph_job, start_server, stop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_server(tmp_path_factory.mktemp("serve"))  # no key: these tests are about the endpoints
    yield served
    stop(served)


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


def models(served: Served) -> dict[str, object]:
    with urllib.request.urlopen(served.url + "/v1/models", timeout=30) as r:
        data = json.loads(r.read())["data"][0]
        assert isinstance(data, dict)
        return data


def test_alternatives_over_the_server_equal_the_in_process_ones(
    server: Served, md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "rewrite",
        str(md),
        "--block",
        "2",
        "--alternatives",
        "3",
        "--seed",
        "40",
        "--steps",
        "3",
        "--json",
    ]
    code, out, err = run_cli(capsys, *args, "--server", server.url)
    assert code == 0, err
    remote = json.loads(out)
    code, out, err = run_cli(capsys, *args, "--device", "cpu")
    assert code == 0, err
    local = json.loads(out)
    assert remote["alternatives"] == local["alternatives"]
    assert [a["seed"] for a in remote["alternatives"]] == [40, 41, 42]
    assert (remote["seed"], remote["model"], remote["demo_model"]) == (40, local["model"], True)
    assert md.read_text(encoding="utf-8") == DOC


def test_inspect_over_the_server_equals_the_in_process_reading(
    server: Served, md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["inspect", str(md), "--block", "2", "--to", "3", "--top", "3", "--json"]
    code, out, err = run_cli(capsys, *args, "--server", server.url)
    assert code == 0, err
    remote = json.loads(out)
    code, out, err = run_cli(capsys, *args, "--device", "cpu")
    assert code == 0, err
    local = json.loads(out)
    assert remote["tokens"] and remote == local  # every token, probability and alternative, exactly
    code, _, err = run_cli(capsys, *args, "--server", server.url, "--model", "x")
    assert code == 2 and "options of `diffedit serve` there" in err


def test_the_alternatives_stream_frames_and_closing_it_cancels_the_batch(server: Served) -> None:
    engine = RemoteEngine.connect(server.url)
    frames: list[AlternativesFrame] = []
    out = engine.alternatives(paragraph_job(steps=3), 2, on_frame=frames.append)  # type: ignore[arg-type]
    assert len(out.candidates) == 2 and frames and frames[-1].final
    assert [f.text if f else None for f in frames[-1].frames] == [c.text for c in out.candidates]

    cancel = CancelToken()

    def stop_now(_frame: AlternativesFrame) -> None:
        cancel.cancel()

    with pytest.raises(Cancelled):
        engine.alternatives(paragraph_job(steps=300), 2, on_frame=stop_now, cancel=cancel)  # type: ignore[arg-type]
    assert engine.rewrite(paragraph_job(steps=1)).steps == 1  # type: ignore[arg-type]  # still serving
    assert (
        "alternatives" in server.log_text() and "cancelled: the client closed the stream" in server.log_text()
    )


def test_models_says_demo_device_endpoints_and_the_tokenizer_fingerprint(server: Served) -> None:
    import hashlib

    from diffedit.engine.loader import default_model_path

    m = models(server)
    assert m["demo_model"] is True and m["device"] == "cpu"
    assert m["endpoints"] == ["/v1/completions", "/v1/alternatives", "/v1/inspect"]
    local = hashlib.sha256((default_model_path() / "tokenizer.json").read_bytes()).hexdigest()
    assert m["tokenizer_sha256"] == local
    with urllib.request.urlopen(server.url + "/health", timeout=30) as r:
        assert json.loads(r.read())["demo_model"] is True
    engine = RemoteEngine.connect(server.url)
    assert engine.device == f"server {engine.host} (cpu)" and engine.host.startswith("127.0.0.1:")
    engine.check_local_tokenizer(default_model_path())  # the same checkpoint: no complaint


def test_a_local_tokenizer_that_differs_is_named(server: Served, tmp_path: Path) -> None:
    engine = RemoteEngine.connect(server.url)
    (tmp_path / "tokenizer.json").write_text('{"model": "another"}', encoding="utf-8")
    with pytest.raises(EngineError, match=r"another tokenizer than .*tokenizer\.json"):
        engine.check_local_tokenizer(tmp_path)
    with pytest.raises(EngineError, match="no local tokenizer to compare"):
        engine.check_local_tokenizer(tmp_path / "missing")


def test_a_job_for_another_tokenizer_is_refused_and_nothing_runs(server: Served) -> None:
    """The client never tokenizes; what a model swapped under it would break is its picture of the model.
    Every POST names the tokenizer seen at connect; a server that changed answers 409."""
    engine = RemoteEngine.connect(server.url)
    engine.facts = ServerFacts(engine.facts.device, engine.facts.endpoints, "0" * 64)  # as if it changed
    with pytest.raises(ServerModelChanged, match="restarted with another model; reconnect"):
        engine.rewrite(paragraph_job(steps=1))  # type: ignore[arg-type]
    with pytest.raises(ServerModelChanged):
        engine.inspect(EditRequest("a ", "b", " c"))
    with pytest.raises(ServerModelChanged):
        engine.alternatives(paragraph_job(steps=1), 2)  # type: ignore[arg-type]


def test_an_older_server_without_an_endpoint_is_said_so(server: Served) -> None:
    engine = RemoteEngine.connect(server.url)
    engine.facts = ServerFacts(engine.facts.device, ("/v1/completions",), engine.facts.tokenizer_sha256)
    with pytest.raises(EngineError, match=r"does not offer alternatives .*older `diffedit serve`"):
        engine.alternatives(paragraph_job(steps=1), 2)  # type: ignore[arg-type]


def test_bad_counts_and_readings_are_refused_with_their_reason(server: Served) -> None:
    for path, body, words in (
        ("/v1/alternatives", {"prompt": {"prefix": "", "target": "x", "suffix": ""}, "count": 99}, "count"),
        ("/v1/inspect", {"prompt": {"prefix": ""}}, "missing or wrong field 'target'"),
        ("/v1/inspect", {"prompt": {"prefix": "", "target": "x", "suffix": ""}, "top_k": 0}, "top_k"),
    ):
        request = urllib.request.Request(
            server.url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 400
        assert words in json.loads(caught.value.read())["error"]["message"]


def test_a_body_that_is_not_a_json_object_is_refused_on_every_endpoint(server: Served) -> None:
    for path in ("/v1/completions", "/v1/alternatives", "/v1/inspect"):
        for data, words in ((b"{not json", "the body is not JSON"), (b"[1, 2]", "must be a JSON object")):
            request = urllib.request.Request(
                server.url + path, data=data, headers={"Content-Type": "application/json"}, method="POST"
            )
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            assert caught.value.code == 400, path
            assert words in json.loads(caught.value.read())["error"]["message"], path
