"""``connect_server(url, protocol, key)``: the engine-like object for a served model, whichever protocol.

The seam the CLI and the app share: both get an object with the in-process engine's interface
(``rewrite(job, on_frame, cancel)``, ``name``, ``loaded``; ``inspect`` where the protocol carries it).

- ``"diffedit"``: a ``diffedit serve`` in its own protocol (:class:`~diffedit.engine.remote.RemoteEngine`):
  the job travels whole, shape-true constraints and polish included, every step streamed.
- ``"vllm"``: vLLM's OpenAI-compatible completions with its diffusion fields
  (:class:`~diffedit.engine.vllm_client.VllmEngine`), for vLLM itself or a ``diffedit serve``; needs the
  model's tokenizer here (``tokenizer``: its folder; the bundled demo model's by default).
- ``"auto"``: ``GET /v1/models`` decides: a server that answers ``"protocol": "diffedit-1"`` is a
  ``diffedit serve`` and gets its own protocol; any other is spoken to as vLLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from diffedit.engine.remote import RemoteEngine
from diffedit.engine.types import EngineError
from diffedit.engine.wire import PROTOCOL

Protocol = Literal["auto", "diffedit", "vllm"]
PROTOCOLS: tuple[Protocol, ...] = ("auto", "diffedit", "vllm")


def connect_server(
    url: str,
    protocol: Protocol = "auto",
    api_key: str | None = None,
    key_env: str = "DIFFEDIT_API_KEY",
    tokenizer: str | Path | None = None,
    chunk_steps: int | None = None,
) -> RemoteEngine:
    """A connected engine for the server at ``url`` (``EngineError`` with the reason where it cannot be).

    ``chunk_steps`` (vLLM protocol, where the server does not stream steps itself): denoising steps per
    request while frames are wanted; 0 for one request per canvas (progress only); None: the default."""
    if protocol not in PROTOCOLS:
        raise EngineError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if not url.startswith(("http://", "https://")):
        raise EngineError(f"--server {url}: give a URL such as http://127.0.0.1:8040")
    if protocol == "auto":
        models = RemoteEngine(url, api_key, key_env)._get("/v1/models")
        protocol = "diffedit" if models.get("protocol") == PROTOCOL else "vllm"
    if protocol == "diffedit":
        return RemoteEngine.connect(url, api_key, key_env)
    from diffedit.engine.vllm_client import DEFAULT_CHUNK_STEPS, LocalModelFiles, VllmEngine

    files = LocalModelFiles.load(tokenizer)
    steps = DEFAULT_CHUNK_STEPS if chunk_steps is None else chunk_steps
    return VllmEngine.connect(url, api_key, key_env, files, steps)
