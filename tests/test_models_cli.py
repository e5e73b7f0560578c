"""``diffedit models``, ``models pull`` and the demo notice, end to end through the CLI (hub on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest

from diffedit.__main__ import main as program_main
from diffedit.cli import main
from tests.engine.fake_hub import FakeHub, FakeRepo, serve

REPO = "acme/tiny-dg"
DOC = "# Title\n\nFirst paragraph with some words.\n\nLast paragraph.\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def hub(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("DIFFEDIT_MODELS_DIR", str(tmp_path / "old-downloads"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    repos = {
        REPO: FakeRepo.from_folder(tiny_checkpoint),
        "acme/gated": FakeRepo.from_folder(tiny_checkpoint, gated=True),
    }
    with serve(FakeHub(repos)) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


def test_pull_then_list_then_rewrite_with_the_repo_id(
    hub: FakeHub, tmp_path: Path, md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "models", "pull", REPO)
    assert code == 0, err
    folder = Path(out.strip())
    assert folder == tmp_path / "hf" / "hub" / "models--acme--tiny-dg" / "snapshots" / hub.repos[REPO].commit
    assert f"use it with --model {REPO}" in err and "B/s" in err  # the tqdm bar: bytes and speed

    code, out, _ = run(capsys, "models", "--json")
    report = json.loads(out)
    names = {m["name"]: m for m in report["models"]}
    assert code == 0 and names[REPO]["usable"] and names[REPO]["path"] == str(folder)
    assert names["diffedit-demo"]["demo"] and not names[REPO]["demo"]
    assert {ld["mode"] for ld in names[REPO]["loads"]} == {"bf16", "int8", "int4", "offloaded"}
    assert report["hf_cache"] == str(tmp_path / "hf" / "hub")

    code, out, _ = run(capsys, "models")
    assert code == 0 and REPO in out and "diffedit-demo (demo)" in out and "BF16" in out

    code, out, err = run(
        capsys, "rewrite", str(md), "--block", "2", "--model", REPO, "--steps", "2", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["demo_model"] is False and "demo model" not in err


def test_download_is_the_old_name_of_pull(hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "download", REPO)
    assert code == 0, err
    assert (Path(out.strip()) / "model.safetensors").is_file()
    assert program_main(["models", "--json"]) == 0  # `diffedit models` reaches the CLI, not the editor
    assert REPO in capsys.readouterr().out


@pytest.mark.parametrize(
    ("repo", "env", "message"),
    [
        ("acme/gated", {}, r"acme/gated is gated: .*`hf auth login` or set HF_TOKEN"),
        (REPO, {"HF_HUB_OFFLINE": "1"}, r"HF_HUB_OFFLINE is set, so acme/tiny-dg cannot be downloaded"),
        ("acme/none", {}, r"acme/none was not found on http://127\.0\.0\.1"),
    ],
)
def test_a_failed_pull_is_one_line_and_exit_2(
    hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    repo: str,
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(capsys, "models", "pull", repo)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("diffedit:")]
    assert len(lines) == 1
    import re

    assert re.search(message, lines[0])


def test_the_demo_says_what_it_is_once(
    md: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "rewrite", str(md), "--block", "2", "--steps", "2", "--seed", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["demo_model"] is True
    assert err.count("bundled demo model") == 1
    assert "writes nonsense" in err and "diffedit models pull google/diffusiongemma-26B-A4B-it" in err
    code, out, err = run(
        capsys, "rewrite", str(md), "--block", "2", "--steps", "2", "--model", str(tiny_checkpoint), "--json"
    )
    assert code == 0 and json.loads(out)["demo_model"] is False and "demo model" not in err


def test_a_repo_id_not_in_the_cache_says_how_to_pull_it(
    md: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    code, out, err = run(capsys, "rewrite", str(md), "--block", "2", "--model", "acme/absent")
    assert code == 2 and out == ""
    assert "download it with `diffedit models pull acme/absent`" in err and len(err.strip().splitlines()) == 1
