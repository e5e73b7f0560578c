"""The per-canvas decoder gives the model's logits bit for bit; the fast sampler's tail floor is harmless."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffedit.engine.decoder import CanvasDecoder
from diffedit.engine.loader import load_model
from diffedit.engine.sampling import TAIL_NATS, draw_fast, floor_far_tail_, score_fast, score_reference
from tests.helpers.context import encode_context


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_canvas_decoder_gives_the_models_logits_exactly(tiny_checkpoint: Path, dtype: str) -> None:
    model = load_model(tiny_checkpoint, dtype=dtype).model
    vocab = int(model.config.text_config.vocab_size)
    canvas_length = int(model.config.canvas_length)
    gen = torch.Generator().manual_seed(0)
    n = 80  # longer than the tiny model's sliding window (64): the sliding layers' mask is not all-true
    cache, masks, positions = encode_context(model, torch.randint(3, vocab, (1, n), generator=gen))
    with torch.no_grad():
        canvas = torch.randint(0, vocab, (1, canvas_length), generator=gen)
        decoder = CanvasDecoder(model, masks, cache, positions)
        self_cond = None
        for _ in range(3):  # the first step without self-conditioning, then with it
            expected = model(
                decoder_input_ids=canvas,
                self_conditioning_logits=self_cond,
                decoder_attention_mask=masks,
                cache=cache,
                decoder_position_ids=positions,
            ).logits
            got = decoder(canvas, self_cond)
            assert got.dtype == torch.float32
            assert torch.equal(got, expected)
            self_cond = (got / 0.7).to(model.dtype)
            canvas = torch.randint(0, vocab, (1, canvas_length), generator=gen)


def test_the_tail_floor_keeps_draws_entropy_and_forbidden_tokens() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 16, 300, generator=gen) * 40  # rows whose tails lie hundreds of nats down
    logits[:, 0, :3] = -1e30  # forbidden, as the loop writes them
    floored = floor_far_tail_(logits.clone())
    top = logits.amax(-1, keepdim=True)
    assert torch.equal(floored.amax(-1, keepdim=True), top)
    assert (floored[:, 1:] >= top[:, 1:] - TAIL_NATS).all()  # the tail raised to the floor...
    assert (logits[:, 1:] < top[:, 1:] - TAIL_NATS - 50).any()  # ...where it lay far below
    assert torch.equal(floored[logits >= top - TAIL_NATS], logits[logits >= top - TAIL_NATS])
    assert torch.equal(floored[:, 0], logits[:, 0])  # rows with a forbidden entry stay as they are
    fast = score_fast(logits.clone())
    logp = torch.log_softmax(logits, -1)  # the same computation without the floor
    assert fast.logp is not None
    assert torch.equal(fast.argmax, score_reference(logits).argmax)
    torch.testing.assert_close(fast.entropy, -(logp.exp() * logp).sum(-1), rtol=1e-6, atol=1e-12)
    # the draw's weights: the same where they are not vanishingly small (the CDF steps over the rest)
    visible = logp > -TAIL_NATS + 4
    torch.testing.assert_close(fast.logp[visible], logp[visible], rtol=1e-6, atol=1e-6)
    assert (fast.logp[~visible].exp() < 1e-26).all()
    picked = draw_fast(fast, torch.ones((2, 16), dtype=torch.bool), gen)
    assert not torch.isin(picked[:, 0], torch.arange(3)).any()  # forbidden stays forbidden
