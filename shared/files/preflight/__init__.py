"""Preflight of print data in a sandboxed process: checks, plain-words findings, previews.

Callers use ``run_preflight`` and ``render_page_preview`` (``sandbox``) with the
dataclasses in ``options``, and get a ``report.PreflightReport``; ``shared.files.messages``
words its findings. Nothing here imports pikepdf, pypdfium2 or Pillow into the caller's
process: only the sandboxed ``run`` does.
"""

from shared.files.preflight.options import Expectations, PreflightLimits, PreflightSettings
from shared.files.preflight.report import PageGroup, PreflightReport
from shared.files.preflight.sandbox import render_page_preview, run_preflight

__all__ = [
    "Expectations",
    "PageGroup",
    "PreflightLimits",
    "PreflightReport",
    "PreflightSettings",
    "render_page_preview",
    "run_preflight",
]
