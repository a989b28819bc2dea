"""Snippet windows and the tail rules; snippet ``i`` covers frames ``[i*stride, i*stride + L)``.

Tail rules for the last, incomplete window (all three are published conventions):

* ``drop``: floor; incomplete windows are discarded (XD-Violence / UR-DMU features).
* ``pad``:  ceil; missing frames repeat the last frame.
* ``loop``: ceil; missing frames wrap around to the start of the video (RTFM features).

The assembler is streaming: it holds at most ``L + stride`` frames plus, for ``loop``, the first
``L``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, get_args

import numpy as np

Tail = Literal["drop", "pad", "loop"]
TAILS: tuple[Tail, ...] = get_args(Tail)


def n_snippets(n_frames: int, snippet_len: int, stride: int, tail: Tail) -> int:
    """Number of snippets of a video with ``n_frames`` frames.

    >>> [n_snippets(40, 16, 16, t) for t in ("drop", "pad", "loop")]
    [2, 3, 3]
    >>> n_snippets(10, 16, 16, "drop"), n_snippets(10, 16, 16, "pad")
    (0, 1)
    """
    if snippet_len < 1 or stride < 1:
        raise ValueError(f"snippet_len and stride must be >= 1, got {snippet_len}, {stride}")
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    if n_frames <= 0:
        return 0
    if tail == "drop":
        return 0 if n_frames < snippet_len else (n_frames - snippet_len) // stride + 1
    # a window is kept if it starts inside the video and the previous one did not already reach
    # the end
    return min(math.ceil(n_frames / stride), 1 + math.ceil(max(0, n_frames - snippet_len) / stride))


def snippet_frame_indices(
    index: int, n_frames: int, snippet_len: int, stride: int, tail: Tail
) -> np.ndarray:
    """Source frame of each position of snippet ``index`` (tail rule applied).

    >>> snippet_frame_indices(2, 40, 16, 16, "pad")[-3:].tolist()
    [39, 39, 39]
    >>> snippet_frame_indices(2, 40, 16, 16, "loop")[6:10].tolist()
    [38, 39, 0, 1]
    """
    frames = index * stride + np.arange(snippet_len)
    if tail == "pad":
        return np.minimum(frames, n_frames - 1)
    if tail == "loop":
        return frames % n_frames
    return frames


class SnippetStream:
    """Turns a stream of per-frame arrays into ``(index, [L, ...])`` snippets for ``[start, stop)``.

    Args:
        frames: per-frame arrays, the first one being frame ``start * stride``.
        snippet_len, stride, tail: the window rule.
        start, stop: snippet range of this piece (``stop=None``: to the end of the video).
        head: ``loop`` only, for pieces that do not start at frame 0: returns the first
            ``min(L, n_frames)`` frames of the video (called at most once, at the end).

    After iteration, :attr:`eof` tells whether the stream reached the end of the video, and then
    :attr:`n_frames` is the true (decoded) frame count; otherwise it is ``None``.
    """

    def __init__(
        self,
        frames: Iterable[np.ndarray],
        snippet_len: int,
        stride: int,
        tail: Tail,
        start: int = 0,
        stop: int | None = None,
        head: Callable[[], list[np.ndarray]] | None = None,
    ):
        self.frames, self.L, self.stride, self.tail = frames, snippet_len, stride, tail
        self.start, self.stop, self.head = start, stop, head
        self.eof = False
        self.n_frames: int | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        L, stride, stop = self.L, self.stride, self.stop
        index = self.start
        pos = index * stride  # absolute index of the next incoming frame
        buf_first = pos  # absolute index of buffer[0]
        buffer: deque[np.ndarray] = deque()
        kept_head: list[np.ndarray] = []
        for frame in self.frames:
            if stop is not None and index >= stop and pos >= stop * stride:
                # frames up to the next piece's first one were consumed, so a piece that then sees
                # no frame at all knows the exact frame count
                return
            if self.start == 0 and len(kept_head) < L:
                kept_head.append(frame)
            if (stop is None or index < stop) and pos >= index * stride:
                if not buffer:
                    buf_first = pos
                buffer.append(frame)
            pos += 1
            while (
                buffer
                and buf_first + len(buffer) >= index * stride + L
                and (stop is None or index < stop)
            ):
                offset = index * stride - buf_first
                yield index, np.stack([buffer[offset + j] for j in range(L)])
                index += 1
                while buffer and buf_first < index * stride:  # frames before the next window
                    buffer.popleft()
                    buf_first += 1
        self.eof = True
        self.n_frames = pos
        if pos > self.start * stride:
            yield from self._tail(index, buf_first, buffer, kept_head)

    def _tail(
        self, index: int, first: int, buffer: deque, kept_head: list
    ) -> Iterator[tuple[int, np.ndarray]]:
        n = self.n_frames
        total = n_snippets(n, self.L, self.stride, self.tail)
        end = total if self.stop is None else min(total, self.stop)
        head = None
        while index < end:
            picks = []
            for k in snippet_frame_indices(index, n, self.L, self.stride, self.tail):
                if k >= first:
                    picks.append(buffer[k - first])
                else:  # loop wrapped to the start of the video
                    if head is None:
                        head = kept_head if self.start == 0 else self._load_head()
                    picks.append(head[k])
            yield index, np.stack(picks)
            index += 1

    def _load_head(self) -> list[np.ndarray]:
        if self.head is None:
            raise ValueError(
                "tail 'loop' in a piece that does not start at frame 0 needs head frames"
            )
        return self.head()
