"""The app's settings: one typed object, stored as JSON in the user's config folder.

``DIFFEDIT_CONFIG_DIR`` overrides the folder (tests point it at a temporary one). Unknown keys are
ignored and a bad value falls back to its default, so an old or hand-edited file never stops the app.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from diffedit.engine.types import GenerationSettings

Theme = Literal["light", "dark", "system"]
CONFIG_ENV = "DIFFEDIT_CONFIG_DIR"
FILE_NAME = "settings.json"
MAX_RECENT = 10


def config_dir() -> Path:
    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else Path(platformdirs.user_config_dir("diffedit"))


@dataclass
class Settings:
    theme: Theme = "light"
    font_family: str = ""  # empty: the system's proportional font (code stays monospace)
    font_size: int = 11
    word_wrap: bool = True
    line_width: int = 0  # characters per line at most; 0: the window's width
    autosave_delay_s: int = 3  # the recovery copy is written this long after the last change
    show_preview: bool = False
    sync_scroll: bool = False  # the editor also follows the preview's scroll (the preview always follows)
    show_outline: bool = True
    show_history: bool = False
    recent_files: list[str] = field(default_factory=list)
    window_geometry: str = ""  # hex of QMainWindow.saveGeometry()
    # Rewrite
    steps: int = 24
    strength: float = 1.0
    model_path: str = ""  # empty: the bundled demo model
    device: str = ""  # empty: let the engine choose
    dtype: str = ""
    fp8: bool = False  # MoE experts in FP8 (half their memory; fastest on Hopper GPUs)
    compile_step: bool = False  # decoder layers as compiled fused kernels
    quantize: str = "none"  # "int8"/"int4": the large weights quantised while loading (docs/models.md)
    offload: str = "auto"  # "auto": split between GPU and RAM where the weights do not fit the GPU; "none"
    free_form: bool = False  # rewrites may restructure blocks (off: each block keeps its kind and length)
    trusted_code_models: list[str] = field(default_factory=list)  # folders allowed to run their own code
    model_folders: list[str] = field(default_factory=list)  # searched for checkpoints by `diffedit models`
    demo_notice_shown: bool = False  # the "this is the demo model" notice comes on one first rewrite only
    # A server (`diffedit serve`) instead of the local model. The key is never here: it is read from the
    # environment variable named below, or from the system keyring (diffedit.server_key) when chosen.
    use_server: bool = False
    server_url: str = ""
    server_key_env: str = "DIFFEDIT_API_KEY"
    server_key_in_keyring: bool = False
    # "diffedit": a `diffedit serve`; "vllm": vLLM's completions (the model folder above gives the tokenizer)
    server_protocol: str = "diffedit"

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.recent_files = [p, *(r for r in self.recent_files if r != p)][:MAX_RECENT]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        out = cls()
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(out, f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else value
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, str)
            if ok:
                setattr(out, f.name, value)
        if out.theme not in ("light", "dark", "system"):
            out.theme = "light"
        if out.offload not in ("auto", "none"):
            out.offload = cls.offload
        if out.server_protocol not in ("diffedit", "vllm"):
            out.server_protocol = cls.server_protocol
        try:  # strength and steps are checked where the engine's settings are built, nowhere else
            GenerationSettings(steps=out.steps, strength=out.strength)
        except ValueError:
            out.steps, out.strength = cls.steps, cls.strength
        out.font_size = min(48, max(6, out.font_size))
        out.line_width = min(400, max(0, out.line_width))
        out.autosave_delay_s = min(600, max(1, out.autosave_delay_s))
        out.recent_files = out.recent_files[:MAX_RECENT]
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, folder: Path | None = None) -> Settings:
        path = (folder or config_dir()) / FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls.from_dict(data) if isinstance(data, dict) else cls()

    def save(self, folder: Path | None = None) -> None:
        """Write atomically (temp file, then replace); a failure to save settings is never fatal."""
        folder = folder or config_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / (FILE_NAME + ".tmp")
            tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
            os.replace(tmp, folder / FILE_NAME)
        except OSError:
            pass
