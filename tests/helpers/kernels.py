"""Stand-ins for the compiled step kernels: a compiler that fails at the first call."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from diffedit.engine.fused_step import PLAIN, StepKernels


def broken_kernels(fail: Callable[..., Any]) -> StepKernels:
    """Kernels that claim to be compiled and call ``fail`` instead of any function of the step."""
    names = [f.name for f in dataclasses.fields(StepKernels) if f.name != "compiled"]
    return dataclasses.replace(PLAIN, compiled=True, **{n: fail for n in names})
