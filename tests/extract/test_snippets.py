"""Snippet windows, the drop/pad/loop tail rules, and the streaming assembler (pieces included)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from wsvad.extract.snippets import SnippetStream, n_snippets, snippet_frame_indices


def reference(n: int, L: int, stride: int, tail: str) -> list[list[int]]:
    """Brute force: every window start, keep/complete it by the rule's definition."""
    out = []
    for start in range(0, n, stride):
        idx = list(range(start, start + L))
        if idx[-1] < n:
            out.append(idx)
        elif tail == "drop":
            break
        else:
            if start > 0 and start - stride + L >= n:
                break  # the previous window already reached the last frame
            out.append([min(i, n - 1) if tail == "pad" else i % n for i in idx])
    return out


@pytest.mark.parametrize("tail", ["drop", "pad", "loop"])
def test_n_snippets_matches_brute_force(tail):
    for n in range(70):
        for L, stride in [(16, 16), (16, 8), (4, 6), (5, 3), (64, 64), (1, 1)]:
            assert n_snippets(n, L, stride, tail) == len(reference(n, L, stride, tail)), (
                n,
                L,
                stride,
            )


def test_tail_rules_on_a_40_frame_video():
    assert [n_snippets(40, 16, 16, t) for t in ("drop", "pad", "loop")] == [2, 3, 3]
    assert snippet_frame_indices(2, 40, 16, 16, "pad").tolist() == list(range(32, 40)) + [39] * 8
    assert snippet_frame_indices(2, 40, 16, 16, "loop").tolist() == list(range(32, 40)) + list(
        range(8)
    )
    # a video shorter than one snippet: loop repeats it, pad holds the last frame, drop keeps
    # nothing
    assert snippet_frame_indices(0, 5, 16, 16, "loop").tolist() == [0, 1, 2, 3, 4] * 3 + [0]
    assert snippet_frame_indices(0, 5, 16, 16, "pad").tolist() == [0, 1, 2, 3, 4] + [4] * 11
    assert n_snippets(5, 16, 16, "drop") == 0


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="tail must be one of"):
        n_snippets(10, 16, 16, "wrap")
    with pytest.raises(ValueError, match="snippet_len and stride must be >= 1"):
        n_snippets(10, 0, 16, "pad")


def _stream(n, L, stride, tail, start=0, stop=None):
    frames = (np.array([i]) for i in range(start * stride, n))
    head = lambda: [np.array([i]) for i in range(min(L, n))]  # noqa: E731
    stream = SnippetStream(frames, L, stride, tail, start, stop, head)
    out = [(i, s[:, 0].tolist()) for i, s in stream]
    return out, stream


@pytest.mark.parametrize("tail", ["drop", "pad", "loop"])
@pytest.mark.parametrize("L,stride", [(16, 16), (16, 8), (4, 6)])
def test_stream_yields_the_reference_windows(tail, L, stride):
    for n in [1, 3, 15, 16, 17, 40, 47, 64, 65]:
        out, stream = _stream(n, L, stride, tail)
        assert [w for _, w in out] == reference(n, L, stride, tail), n
        assert [i for i, _ in out] == list(range(len(out)))
        assert stream.eof and stream.n_frames == n


@pytest.mark.parametrize("tail", ["drop", "pad", "loop"])
@pytest.mark.parametrize("L,stride", [(16, 16), (16, 8), (4, 6)])
def test_pieces_concatenate_to_the_whole_video(tail, L, stride):
    for n in [17, 40, 47, 64, 100]:
        whole, _ = _stream(n, L, stride, tail)
        for size in (1, 2, 3):
            cuts = list(range(0, 12, size))
            joined, counts = [], []
            for a, b in zip(cuts, cuts[1:] + [None], strict=True):
                out, stream = _stream(n, L, stride, tail, a, b)
                assert all(a <= i and (b is None or i < b) for i, _ in out)
                joined += out
                counts.append(stream.n_frames if stream.eof else None)
            assert joined == whole, (n, size)
            # the first piece that reaches the end knows the exact frame count
            assert next(c for c in counts if c is not None) == n


def test_stream_holds_a_bounded_number_of_frames():
    alive: set[int] = set()

    def frames():
        for i in range(1000):
            frame = np.zeros(64, np.uint8)
            alive.add(i)
            weakref.finalize(frame, alive.discard, i)
            yield frame

    peak = 0
    for _, snippet in SnippetStream(frames(), 16, 8, "loop"):
        del snippet  # numpy frees by reference count: no gc pass needed
        peak = max(peak, len(alive))
    # window (16) + the frame in flight + the kept head for loop (16), independent of the 1000
    # frames
    assert 16 <= peak <= 16 + 16 + 2
