"""The JSON shapes of ``diffedit serve``'s protocol: a job goes out, frames and one result come back.

No torch here: the client (``diffedit.engine.remote``) imports it without loading a model. Every shape is a
plain JSON object whose fields are the dataclass fields of ``diffedit.engine.types``; tuples travel as
lists and frozensets as sorted lists, and decoding rebuilds the frozen dataclasses exactly
(``job_from_json(job_to_json(job)) == job``), so the server runs the same job, templates and all.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from diffedit.engine.types import (
    AlternativesFrame,
    AlternativesResult,
    BlockTemplate,
    EditRequest,
    Frame,
    FreeText,
    GenerationSettings,
    HeldText,
    KeptText,
    RewriteJob,
    RewriteResult,
    SlotOutcome,
    TemplateSegment,
    TokenReading,
)

PROTOCOL = "diffedit-1"  # sent in every job and every /v1/models answer


class WireError(ValueError):
    """A request or answer that does not have the protocol's shape: says which field."""


def _segment_to_json(seg: TemplateSegment) -> dict[str, Any]:
    if isinstance(seg, HeldText):
        return {"held": seg.text}
    return {
        "free": {
            "role": seg.role,
            "original": seg.original,
            "forbid_chars": sorted(seg.forbid_chars),
            "line_start_patterns": list(seg.line_start_patterns),
            "band": list(seg.band),
            "target_tokens": seg.target_tokens,
            "kept": [{"start": k.start, "text": k.text} for k in seg.kept],
        }
    }


def _segment_from_json(obj: dict[str, Any]) -> TemplateSegment:
    if "held" in obj:
        return HeldText(str(obj["held"]))
    f = obj["free"]
    lo, hi = f.get("band", (0.6, 1.5))
    return FreeText(
        role=str(f["role"]),
        original=str(f["original"]),
        forbid_chars=frozenset(str(c) for c in f.get("forbid_chars", ())),
        line_start_patterns=tuple(str(p) for p in f.get("line_start_patterns", ())),
        band=(float(lo), float(hi)),
        target_tokens=None if f.get("target_tokens") is None else int(f["target_tokens"]),
        kept=tuple(KeptText(int(k["start"]), str(k["text"])) for k in f.get("kept", ())),
    )


def job_to_json(job: RewriteJob) -> dict[str, Any]:
    """The request body of ``POST /v1/completions`` for ``job`` (without ``stream``)."""
    return {
        "protocol": PROTOCOL,
        "prompt": asdict(job.request),
        "settings": asdict(job.settings),
        "job_id": job.job_id,
        "templates": None
        if job.templates is None
        else [
            {
                "kind": t.kind,
                "gap_before": t.gap_before,
                "segments": [_segment_to_json(s) for s in t.segments],
            }
            for t in job.templates
        ],
        "batch_blocks": job.batch_blocks,
        "polish": job.polish,
    }


def job_from_json(body: dict[str, Any]) -> RewriteJob:
    """The job a request body describes; ``WireError`` names the field that is missing or wrong.

    Settings go through ``GenerationSettings``'s own checks (a ``SettingsError`` for a value out of range).
    """
    try:
        prompt = body["prompt"]
        request = EditRequest(
            str(prompt["prefix"]),
            str(prompt["target"]),
            str(prompt["suffix"]),
            str(prompt.get("instruction", "")),
        )
        known = {f.name for f in fields(GenerationSettings)}
        raw = body.get("settings") or {}
        unknown = set(raw) - known
        if unknown:
            raise WireError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = GenerationSettings(**raw)
        templates_raw = body.get("templates")
        templates = (
            None
            if templates_raw is None
            else tuple(
                BlockTemplate(
                    str(t["kind"]),
                    tuple(_segment_from_json(s) for s in t["segments"]),
                    str(t.get("gap_before", "")),
                )
                for t in templates_raw
            )
        )
        polish = body.get("polish")
        return RewriteJob(
            request,
            settings,
            int(body.get("job_id", 0)),
            templates,
            batch_blocks=bool(body.get("batch_blocks", True)),
            polish=None if polish is None else float(polish),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise WireError(f"the job is not in diffedit's protocol: missing or wrong field {exc}") from exc


def frame_to_json(frame: Frame) -> dict[str, Any]:
    return {"type": "frame"} | asdict(frame)


def frame_from_json(obj: dict[str, Any]) -> Frame:
    return Frame(
        job_id=int(obj["job_id"]),
        canvas_index=int(obj["canvas_index"]),
        step=int(obj["step"]),
        total_steps=int(obj["total_steps"]),
        token_ids=tuple(int(t) for t in obj["token_ids"]),
        pieces=tuple(str(p) for p in obj["pieces"]),
        spans=tuple((int(a), int(b)) for a, b in obj["spans"]),
        accepted=tuple(bool(a) for a in obj["accepted"]),
        changed=tuple(bool(c) for c in obj["changed"]),
        entropy=tuple(float(e) for e in obj["entropy"]),
        text=str(obj["text"]),
        final=bool(obj.get("final", False)),
    )


def result_to_json(result: RewriteResult) -> dict[str, Any]:
    return {"type": "result"} | asdict(result)


def result_from_json(obj: dict[str, Any]) -> RewriteResult:
    try:
        return RewriteResult(
            job_id=int(obj["job_id"]),
            text=str(obj["text"]),
            token_ids=tuple(int(t) for t in obj["token_ids"]),
            steps=int(obj["steps"]),
            canvases=int(obj["canvases"]),
            tokens_per_forward=float(obj["tokens_per_forward"]),
            encode_ms=float(obj["encode_ms"]),
            step_ms_median=float(obj["step_ms_median"]),
            total_s=float(obj["total_s"]),
            seed=int(obj["seed"]),
            model=str(obj["model"]),
            truncated_context=bool(obj.get("truncated_context", False)),
            compiled=obj.get("compiled"),
            slots=tuple(SlotOutcome(**s) for s in obj.get("slots", ())),
            polished=obj.get("polished"),
            batched_rows=int(obj.get("batched_rows", 1)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"the server's result is not in diffedit's protocol: {exc}") from exc


# -- alternatives and the read-only pass (``POST /v1/alternatives``, ``POST /v1/inspect``) ----------------


def alternatives_frame_to_json(frame: AlternativesFrame) -> dict[str, Any]:
    return {
        "type": "alternatives_frame",
        "job_id": frame.job_id,
        "frames": [None if f is None else asdict(f) for f in frame.frames],
        "final": frame.final,
    }


def alternatives_frame_from_json(obj: dict[str, Any]) -> AlternativesFrame:
    return AlternativesFrame(
        job_id=int(obj["job_id"]),
        frames=tuple(None if f is None else frame_from_json(f) for f in obj["frames"]),
        final=bool(obj.get("final", False)),
    )


def alternatives_result_to_json(out: AlternativesResult) -> dict[str, Any]:
    return {
        "type": "alternatives_result",
        "job_id": out.job_id,
        "seed": out.seed,
        "candidates": [asdict(c) for c in out.candidates],
        "forwards": out.forwards,
        "encodes": out.encodes,
        "total_s": out.total_s,
    }


def alternatives_result_from_json(obj: dict[str, Any]) -> AlternativesResult:
    try:
        return AlternativesResult(
            job_id=int(obj["job_id"]),
            seed=int(obj["seed"]),
            candidates=tuple(result_from_json(c) for c in obj["candidates"]),
            forwards=int(obj["forwards"]),
            encodes=int(obj["encodes"]),
            total_s=float(obj["total_s"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"the server's alternatives are not in diffedit's protocol: {exc}") from exc


def inspect_to_json(request: EditRequest, top_k: int, context_tokens: int) -> dict[str, Any]:
    """The request body of ``POST /v1/inspect``: the text to read (``prompt.target``) in its context."""
    return {"protocol": PROTOCOL, "prompt": asdict(request), "top_k": top_k, "context_tokens": context_tokens}


def inspect_from_json(body: dict[str, Any]) -> tuple[EditRequest, int, int]:
    try:
        prompt = body["prompt"]
        request = EditRequest(
            str(prompt["prefix"]),
            str(prompt["target"]),
            str(prompt["suffix"]),
            str(prompt.get("instruction", "")),
        )
        top_k, context_tokens = int(body.get("top_k", 5)), int(body.get("context_tokens", 1024))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WireError(f"the reading is not in diffedit's protocol: missing or wrong field {exc}") from exc
    if not 1 <= top_k <= 100 or not 1 <= context_tokens <= 1_000_000:
        raise WireError("top_k must be from 1 to 100 and context_tokens positive")
    return request, top_k, context_tokens


def readings_to_json(model: str, readings: tuple[TokenReading, ...]) -> dict[str, Any]:
    return {
        "object": "inspection",
        "model": model,
        "readings": [
            {
                "token_id": r.token_id,
                "start": r.start,
                "end": r.end,
                "p": r.p,
                "entropy": r.entropy,
                "top": [[t, q] for t, q in r.top],
            }
            for r in readings
        ],
    }


def readings_from_json(obj: dict[str, Any]) -> tuple[TokenReading, ...]:
    try:
        return tuple(
            TokenReading(
                int(r["token_id"]),
                int(r["start"]),
                int(r["end"]),
                float(r["p"]),
                float(r["entropy"]),
                tuple((str(t), float(q)) for t, q in r["top"]),
            )
            for r in obj["readings"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"the server's reading is not in diffedit's protocol: {exc}") from exc
