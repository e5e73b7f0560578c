"""What the loader needs from a checkpoint's files and from the device, checked before transformers runs.

A damaged or foreign file would otherwise surface as an AttributeError, a KeyError ('added_tokens') or an
error blamed on the wrong file. Each check raises a ``ModelLoadError`` of one line that names the file, the
field and the way out. No torch at import.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffedit.engine.types import ModelLoadError
from diffedit.fileinfo import file_kind

_REDOWNLOAD = "the file is damaged or not from a DiffusionGemma checkpoint: re-download the model"


@dataclass(frozen=True)
class Field:
    """One JSON value the loader reads: its kind, and whether it must be there."""

    kind: str
    """"object", "list", "string", "bool", "number", "count" (a positive whole number), "int",
    "ints" (an int or a list of ints), "text" (a string or a list, as chat templates are)."""
    required: bool = False
    fields: dict[str, Field] = field(default_factory=dict)
    """For an object: its fields; for a list: the fields of each item (an object)."""


_EXPECTED = {
    "object": "an object",
    "list": "a list",
    "string": "a string",
    "bool": "true or false",
    "number": "a number",
    "count": "a positive whole number",
    "int": "a whole number",
    "ints": "a whole number or a list of them",
    "text": "a string or a list",
}

_TEXT_CONFIG = {
    name: Field("count")
    for name in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "sliding_window",
        "num_experts",
        "top_k_experts",
        "moe_intermediate_size",
    )
} | {"layer_types": Field("list"), "rope_parameters": Field("object"), "rms_norm_eps": Field("number")}

SCHEMAS: dict[str, dict[str, Field]] = {
    "config.json": {
        "model_type": Field("string", required=True),
        "text_config": Field("object", fields=_TEXT_CONFIG),
        "vision_config": Field("object"),
        "canvas_length": Field("count"),
        "eos_token_id": Field("ints"),
        "pad_token_id": Field("int"),
        "bos_token_id": Field("int"),
    },
    "generation_config.json": {
        "max_denoising_steps": Field("count"),
        "t_min": Field("number"),
        "t_max": Field("number"),
        "confidence_threshold": Field("number"),
        "stability_threshold": Field("int"),
        "sampler_config": Field("object", fields={"entropy_bound": Field("number")}),
        "eos_token_id": Field("ints"),
        "pad_token_id": Field("int"),
        "bos_token_id": Field("int"),
    },
    "diffedit_infill.json": {
        "format": Field("string", required=True),
        "prefix_token": Field("string", required=True),
        "suffix_token": Field("string", required=True),
        "middle_token": Field("string", required=True),
        "add_bos": Field("bool"),
        "context_tokens": Field("count"),
    },
    "tokenizer.json": {
        "model": Field("object", required=True),
        "added_tokens": Field(
            "list",
            required=True,
            fields={"id": Field("int", required=True), "content": Field("string", required=True)},
        ),
        "version": Field("string"),
    },
    "tokenizer_config.json": {
        "added_tokens_decoder": Field("object"),
        "chat_template": Field("text"),
        "model_max_length": Field("number"),
    },
    "special_tokens_map.json": {},
    "model.safetensors.index.json": {"weight_map": Field("object", required=True)},
}
"""The JSON files a checkpoint may hold, with the fields the loader (ours or transformers') reads."""


def refuse_special_files(folder: Path) -> None:
    """A FIFO would hang the load and a device would read forever: only regular files and folders pass."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise ModelLoadError(f"model folder {folder} cannot be read ({exc.strerror or exc})") from exc
    for entry in entries:
        try:
            mode = os.stat(entry.path).st_mode  # follows links, as the loader will
        except FileNotFoundError:
            if entry.name in SCHEMAS or entry.name.endswith(".safetensors"):
                raise ModelLoadError(
                    f"{Path(entry.path)} is a broken symbolic link; re-download the model"
                ) from None
            continue
        except OSError:
            continue  # unreadable: the file's own check reports it if the loader needs it
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ModelLoadError(
                f"{Path(entry.path)} is {file_kind(mode)}, not a regular file; "
                "a checkpoint folder holds regular files only: re-download the model"
            )


def check_json_files(folder: Path, names: Iterable[str] = SCHEMAS) -> None:
    """Each of ``names`` present in ``folder`` is valid JSON holding what the loader reads from it."""
    for name in names:
        path = folder / name
        if path.is_file():
            check_json(path, read_json(path), SCHEMAS[name])


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); {_REDOWNLOAD}") from exc


def check_json(path: Path, data: Any, schema: dict[str, Field]) -> None:
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} holds {_json_kind(data)}, not a JSON object; {_REDOWNLOAD}")
    _check_fields(path, data, schema, "")


def _check_fields(path: Path, data: dict[str, Any], schema: dict[str, Field], prefix: str) -> None:
    for name, spec in schema.items():
        where = f"{prefix}{name}"
        if name not in data:
            if spec.required:
                raise ModelLoadError(f"{path}: field '{where}' is missing; {_REDOWNLOAD}")
            continue
        value = data[name]
        if value is None and not spec.required:
            continue
        if not _fits(value, spec.kind):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ModelLoadError(
                f"{path}: field '{where}' is {shown} ({_json_kind(value)}), "
                f"but the loader needs {_EXPECTED[spec.kind]}; {_REDOWNLOAD}"
            )
        if spec.fields and isinstance(value, dict):
            _check_fields(path, value, spec.fields, f"{where}.")
        elif spec.fields and isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ModelLoadError(
                        f"{path}: field '{where}[{i}]' is {_json_kind(item)}, "
                        f"but the loader needs an object; {_REDOWNLOAD}"
                    )
                _check_fields(path, item, spec.fields, f"{where}[{i}].")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: Any, kind: str) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "number": lambda v: _is_int(v) or isinstance(v, float),
        "count": lambda v: _is_int(v) and v > 0,
        "int": _is_int,
        "ints": lambda v: _is_int(v) or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "text": lambda v: isinstance(v, (str, list)),
    }
    return bool(checks[kind](value))


def _json_kind(value: Any) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "true or false"),
        (dict, "a JSON object"),
        (list, "a JSON list"),
        (str, "a JSON string"),
        (int, "a number"),
        (float, "a number"),
    )
    if value is None:
        return "null"
    return next(name for kind, name in kinds if isinstance(value, kind))


# ---------------------------------------------------------------------------------------------- weights


def check_loading_info(folder: Path, info: dict[str, Any], weight_files: Iterable[Path]) -> None:
    """Weights whose shapes do not fit the config (transformers reports them as ``mismatched_keys``)."""
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        key, in_weights, in_model = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        names = sorted(p.name for p in weight_files)
        files = names[0] if len(names) == 1 else f"{len(names)} *.safetensors files"
        raise ModelLoadError(
            f"the weights in {folder} do not load: '{key}' has shape {list(in_weights)} in the weights, "
            f"config.json needs {list(in_model)}{more}; config.json and {files} come from "
            "different models: re-download the model"
        )


# ---------------------------------------------------------------------------------------------- device


def check_device(requested: str) -> str:
    """``requested`` if this machine has that device, else a ModelLoadError saying what to use."""
    import torch

    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ModelLoadError(
            f"unknown device {requested!r}: use cpu, cuda, cuda:N (a GPU's number) or mps"
        ) from None
    if device.type in ("cpu", "meta"):  # meta: shapes without data (tests use it as a device apart)
        return requested
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                f"this PyTorch ({torch.__version__}) is built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES?)"
            )
            raise ModelLoadError(f"CUDA is not available: {why}; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ModelLoadError(
                f"there is no GPU {requested}: this machine has {count} (cuda:0..cuda:{count - 1})"
            )
        return requested
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelLoadError("Apple MPS is not available on this machine; use --device cpu")
        return requested
    raise ModelLoadError(f"diffedit runs on cpu, cuda or mps, not {device.type!r}")
