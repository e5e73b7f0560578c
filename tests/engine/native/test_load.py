"""Which checkpoints load natively, the config and tokenizer read as transformers reads them, and the way
back to transformers for everything else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer, DiffusionGemmaTextConfig

from diffedit.engine.loader import default_model_path, load_model
from diffedit.engine.native.config import Unsupported, read_text_config
from diffedit.engine.native.tokenizer import NativeTokenizer
from diffedit.engine.types import ModelLoadError
from tests.checkpoints import build_checkpoint

TEXTS = [
    "Hello world",
    "  two  spaces\n\nnew paragraph",
    "<|prefix|>x<|middle|>y<eos> and <bos><pad><unk>",
    "émoji 🎉 café — “quotes”",
    "```python\ndef f(): pass\n```",
    "",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("native-load") / "tiny")


def _specials_left_out(tiny: Path, folder: Path) -> Path:
    """The tiny tokenizer with two of its special tokens missing from tokenizer.json's added tokens and a
    third not marked special: tokenizer_config.json still names them, so transformers adds them back."""
    folder.mkdir()
    for name in ("tokenizer_config.json", "tokenizer.json"):
        shutil.copy(tiny / name, folder / name)
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = [
        t for t in data["added_tokens"] if t["content"] not in ("<|prefix|>", "<|suffix|>")
    ]
    for t in data["added_tokens"]:
        if t["content"] == "<|middle|>":
            t["special"] = False
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.mark.parametrize("which", ["demo", "tiny", "specials-left-out"])
def test_the_tokenizer_answers_as_transformers_does(which: str, tiny: Path, tmp_path: Path) -> None:
    folders = {"demo": default_model_path(), "tiny": tiny}
    folder = folders.get(which) or _specials_left_out(tiny, tmp_path / which)
    theirs, ours = AutoTokenizer.from_pretrained(folder, local_files_only=True), NativeTokenizer(folder)
    for text in TEXTS:
        assert ours.encode(text, add_special_tokens=False) == theirs.encode(text, add_special_tokens=False)
        a = theirs(text, add_special_tokens=False, return_offsets_mapping=True)
        b = ours(text, add_special_tokens=False, return_offsets_mapping=True)
        assert b["input_ids"] == a["input_ids"]
        assert b["offset_mapping"] == [tuple(o) for o in a["offset_mapping"]]
    n = len(theirs)
    assert len(ours) == n
    singles = [[i] for i in range(n)]
    for skip in (True, False):
        assert ours.batch_decode(singles, skip_special_tokens=skip) == theirs.batch_decode(
            singles, skip_special_tokens=skip
        )
    runs = [list(range(s, min(n, s + 9))) for s in range(0, n, 7)]
    assert [ours.decode(r) for r in runs] == [theirs.decode(r) for r in runs]
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(ours, name) == getattr(theirs, name), name
    for token in ("<|prefix|>", "<|suffix|>", "<|middle|>", "not-a-token"):
        assert ours.convert_tokens_to_ids(token) == theirs.convert_tokens_to_ids(token)


@pytest.mark.parametrize(
    "fields",
    [
        {"num_hidden_layers": 7, "num_experts": 2, "top_k_experts": 1, "moe_intermediate_size": 8},
        {
            "num_hidden_layers": 3,
            "layer_types": ["sliding_attention"] * 3,  # the last one is forced to full attention
            "global_head_dim": 24,
            "num_global_key_value_heads": 1,
            "num_experts": 2,
            "top_k_experts": 1,
            "moe_intermediate_size": 8,
        },
    ],
)
def test_configs_without_per_layer_config_resolve_as_transformers(fields: dict[str, Any]) -> None:
    theirs = DiffusionGemmaTextConfig(**fields)
    ours = read_text_config({"model_type": "diffusion_gemma", "text_config": fields})
    assert ours.layer_types == theirs.layer_types
    for i in range(theirs.num_hidden_layers):
        layer = theirs.per_layer_config[i]
        assert (ours.head_dims[i], ours.kv_heads[i]) == (layer.head_dim, layer.num_key_value_heads)


def _edited_copy(src: Path, dst: Path, **text_fields: Any) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text(encoding="utf-8"))
    config["text_config"].update(text_fields)
    (dst / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return dst


def test_auto_is_native_for_a_plain_checkpoint(tiny: Path) -> None:
    assert load_model(tiny, "cpu", impl="auto").implementation == "native"


def test_what_the_native_model_does_not_model_loads_through_transformers(tiny: Path, tmp_path: Path) -> None:
    vision = _edited_copy(tiny, tmp_path / "vision", use_bidirectional_attention="vision")
    assert load_model(vision, "cpu", impl="auto").implementation == "transformers"
    with pytest.raises(ModelLoadError, match="use_bidirectional_attention"):
        load_model(vision, "cpu", impl="native")
    with pytest.raises(Unsupported, match="gelu"):
        read_text_config(
            json.loads(
                (_edited_copy(tiny, tmp_path / "act", hidden_activation="gelu") / "config.json").read_text()
            )
        )


def test_quantised_loads_stay_with_transformers(tiny: Path) -> None:
    assert load_model(tiny, "cpu", quantize="int8", impl="auto").implementation == "transformers"
    with pytest.raises(ModelLoadError, match="--impl native"):
        load_model(tiny, "cpu", quantize="int8", impl="native")
    assert load_model(tiny, "cpu", impl="transformers").implementation == "transformers"
