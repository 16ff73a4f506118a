"""Overlapping windows over long texts, so every detector bounds its work per window."""

from __future__ import annotations

from collections.abc import Iterator

DEFAULT_WINDOW = 1000
DEFAULT_OVERLAP = 200


def windows(
    length: int, size: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP
) -> Iterator[tuple[int, int]]:
    """Half-open ``(start, end)`` ranges covering ``[0, length)``; consecutive ones overlap by ``overlap``.

    A text no longer than ``size`` is one window. Raises ``ValueError`` on a nonsensical size.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"invalid window size {size} / overlap {overlap}")
    if length <= size:
        yield (0, length)
        return
    step = size - overlap
    start = 0
    while True:
        end = min(start + size, length)
        yield (start, end)
        if end >= length:
            return
        start += step
