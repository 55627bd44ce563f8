"""The one error type of generation: bad input or an unusable setting, phrased as one line."""
from __future__ import annotations


class GenerationError(ValueError):
    """One line naming the file / line / key / value at fault (no traceback needed to act on it)."""
