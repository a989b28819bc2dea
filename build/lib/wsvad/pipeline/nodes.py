"""How a video id names its array inside the feature store: percent-encoded and reversible, and
never a path that could leave the store."""

from __future__ import annotations

from urllib.parse import quote, unquote

from wsvad.errors import WsvadError

_SAFE = "._=@#+-"
MAX_NODE = 160


def node_name(video_id: str) -> str:
    """Filesystem-safe, reversible name of a video's array inside the store.

    Anything outside ``[A-Za-z0-9._=@#+-]`` is percent-encoded (so ``/`` cannot make a path),
    and ids that could escape the store (empty, ``.``/``..``, leading dot) are refused.

    >>> node_name("v=U6MC8JJJZSY__#1_label_G-0-0")
    'v=U6MC8JJJZSY__#1_label_G-0-0'
    >>> node_name("a b/c")
    'a%20b%2Fc'
    """
    if not isinstance(video_id, str) or not video_id.strip():
        raise WsvadError(f"invalid video id {video_id!r}: empty")
    if video_id in (".", "..") or video_id.startswith(".") or video_id.startswith("__"):
        raise WsvadError(f"invalid video id {video_id!r}: must not start with '.' or '__'")
    if "\x00" in video_id:
        raise WsvadError(f"invalid video id {video_id!r}: contains a NUL byte")
    node = quote(video_id, safe=_SAFE)
    if len(node) > MAX_NODE:  # + the .tmp suffix (host, pid, tag) must fit a 255-byte file name
        raise WsvadError(
            f"invalid video id {video_id[:40]!r}...: too long ({len(node)} characters once "
            f"percent-encoded, at most {MAX_NODE})"
        )
    return node


def video_id_of(node: str) -> str:
    """Inverse of :func:`node_name`."""
    return unquote(node)
