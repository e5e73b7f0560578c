"""The demo tokenizer: special ids and exact round trips of Markdown."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from diffedit.resources import resources_dir

DEMO = resources_dir() / "models" / "diffedit-demo"

MARKDOWN = [
    "# Title\n\nA paragraph with *emphasis*, **bold**, `code` and a [link](https://example.org).\n",
    "-   item one\n-   item two\n    continued\n\n1. first\n2. second",
    "```python\ndef f(x):\n\treturn x  # tab\n        indented = True\n```\n",
    "> quote\n>\n> more\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    "Unicode: Éléonore, 景太郎, emoji 😀, math ∑ x², dash — and trailing spaces   \n\n\n",
    "\\*not emphasis\\* <br/> &amp; ~~strike~~ ___ *** --- \r\n windows line",
]


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return AutoTokenizer.from_pretrained(str(DEMO))


def test_special_token_ids(tokenizer: object) -> None:
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)
    assert tokenizer.unk_token == "<unk>"
    for token in ("<|prefix|>", "<|suffix|>", "<|middle|>"):
        assert tokenizer.convert_tokens_to_ids(token) not in (None, tokenizer.unk_token_id)
    assert len(tokenizer) == 8192


@pytest.mark.parametrize("text", MARKDOWN)
def test_markdown_round_trips_exactly(tokenizer: object, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_special_tokens_are_single_ids(tokenizer: object) -> None:
    ids = tokenizer.encode("<|prefix|>x<|middle|>", add_special_tokens=False)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|prefix|>")
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|middle|>")
