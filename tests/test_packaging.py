"""The built wheel carries its resources and runs a rewrite from a fresh virtual environment.

Offline and quick: the wheel is built without build isolation and installed with ``--no-index
--no-deps``; torch, transformers and the rest come from this environment's site-packages through a
``.pth`` line (that folder's own ``.pth`` files, among them an editable diffedit, are not read).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = (
    "diffedit/resources/welcome.md",
    "diffedit/resources/templates/readme.md",
    "diffedit/resources/models/diffedit-demo/model.safetensors",
    "diffedit/resources/models/diffedit-demo/tokenizer.json",
    "diffedit/resources/models/diffedit-demo/config.json",
    "diffedit/resources/icons/io.github.diffedit.Diffedit.svg",
    "diffedit/resources/icons/hicolor/48x48/apps/io.github.diffedit.Diffedit.png",
    "diffedit/resources/desktop/io.github.diffedit.Diffedit.desktop",
    "diffedit/resources/desktop/io.github.diffedit.Diffedit.metainfo.xml",
)
DOC = "# Notes\n\nThe first paragraph stays.\n\nThe second paragraph is the one the model rewrites.\n"


# Build outputs, environments and local data of a checkout: a stale build/ would hide a packaging mistake.
NOT_SOURCES = {".git", ".venv", ".ci-venv", "build", "dist", "data", "runs", "gpu-out"}


def _not_sources(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {
        n for n in names if (top and n in NOT_SOURCES) or n.endswith((".egg-info", "_cache", "__pycache__"))
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    setuptools_major = int(importlib.metadata.version("setuptools").split(".")[0])
    assert setuptools_major >= 77, "the build needs setuptools>=77 here: pip install -e '.[test]'"
    source = tmp_path_factory.mktemp("source") / "diffedit"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(out)], check=True, cwd=source)
    (found,) = out.glob("diffedit-*.whl")
    return found


def test_the_wheel_carries_the_resources_as_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(RESOURCES) <= names
    assert not [n for n in names if ".data/" in n]  # nothing installed outside the package any more


def test_a_rewrite_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    # Neither this checkout (on PYTHONPATH, or the cwd with the build's egg-info) may look installed to pip.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--no-deps"]
    subprocess.run([*pip, wheel], check=True, cwd=tmp_path, env=env)
    target_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dev_site = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(target_site) / "zz_dev_dependencies.pth").write_text("\n".join(sorted(dev_site)) + "\n")
    work = tmp_path / "cwd"  # not the checkout: `diffedit` must come from the wheel
    work.mkdir()
    (work / "notes.md").write_text(DOC)

    where = subprocess.run(
        [
            python,
            "-c",
            "import diffedit, diffedit.resources as r; print(diffedit.__file__); print(r.resources_dir())",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert Path(where[0]).is_relative_to(env_dir), where  # the wheel's copy, not the checkout's editable one
    assert Path(where[1]).is_relative_to(env_dir) and (Path(where[1]) / "welcome.md").is_file()

    run = subprocess.run(
        [
            python,
            "-m",
            "diffedit",
            "rewrite",
            "notes.md",
            "--block",
            "3",
            "--json",
            "--seed",
            "1",
            "--device",
            "cpu",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["model"] == "diffedit-demo" and report["demo_model"]  # found inside the installed wheel
    assert report["text"] == "# Notes\n\nThe first paragraph stays.\n\n" + report["replacement"] + "\n"
    assert report["original"] == "The second paragraph is the one the model rewrites."
    assert report["steps"] >= 1
