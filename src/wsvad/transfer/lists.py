"""Published feature lists -> which feature files belong to which video, and in which split.

The lists come as their authors left them (see wsvad/data/benchmark_lists/SOURCES.md): RTFM's UCF
lists are CRLF with absolute Windows paths (``G:\\UCF_Test_ten_crop_i3d\\Abuse028_x264_i3d.npy``),
UR-DMU's have no final newline and relative per-crop paths (``dataset/Abuse/Abuse028_x264__0.npy``),
XDVioDet's are absolute POSIX per-crop paths. Only the file name (and, when it exists under the
features root, the relative path) of an entry is used: the directories are the publisher's disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wsvad.data.listfiles import posix_path
from wsvad.errors import WsvadError

# A list whose file name says "test" holds test videos (ucf-i3d-test.list, rgb_test.list,
# UCF_Test.list, shanghai-i3d-test-10crop.list); every published train list lacks the word.
_TEST_WORD = "test"


@dataclass(frozen=True)
class ListSpec:
    """One feature list and the split its videos belong to."""

    path: Path
    split: str


@dataclass
class VideoFiles:
    """The feature files of one video, by crop index (0 for one-file-per-video formats)."""

    video_id: str
    split: str | None
    files: dict[int, Path] = field(default_factory=dict)
    listed_as: str | None = None  # first list entry naming the video, for messages
    problem: str | None = None  # why this video cannot be imported (missing file, duplicate, ...)


def split_from_list_name(path: Path) -> str:
    """``test`` when the list's file name contains "test" (any case), else ``train``.

    >>> split_from_list_name(Path("ucf-i3d-test.list")), split_from_list_name(Path("rgb.list"))
    ('test', 'train')
    """
    return "test" if _TEST_WORD in Path(path).name.lower() else "train"


def read_entries(path: Path) -> list[str]:
    """Non-blank, stripped entries of a list file, whatever its line endings and final newline."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise WsvadError(f"{path}: cannot read feature list ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WsvadError(f"{path}: feature list is not UTF-8 text (byte {exc.start})") from exc
    # splitlines() accepts \r\n (RTFM) and a missing final newline (UR-DMU) alike.
    return [line.strip() for line in text.splitlines() if line.strip()]


def index_features_root(root: Path, accept: Callable[[str], bool]) -> dict[str, list[Path]]:
    """Every file under ``root`` whose name ``accept``s, by file name (one walk, no file is
    opened)."""
    found: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if accept(name):
                found.setdefault(name, []).append(Path(folder) / name)
    return found


def resolve_entry(
    entry: str, root: Path, by_name: dict[str, list[Path]]
) -> tuple[Path | None, str | None]:
    """The file an entry names under ``root``: its relative path if that exists, else its file name.

    Returns ``(path, None)`` or ``(None, reason)``.
    """
    rel = posix_path(entry)
    if not rel.is_absolute():
        direct = root / rel
        if direct.is_file():
            return direct, None
    candidates = by_name.get(rel.name, [])
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"{rel.name} not found under {root}"
    shown = ", ".join(str(c.relative_to(root)) for c in candidates[:3])
    return None, f"{rel.name} is ambiguous under {root} ({len(candidates)} files: {shown})"


def group_listed(
    lists: list[ListSpec],
    root: Path,
    parse_name: Callable[[str], tuple[str, int] | None],
) -> tuple[dict[str, VideoFiles], list[str]]:
    """Group the entries of ``lists`` into videos, in list order.

    Args:
        lists: the list files with their splits.
        root: the features root the entries are looked up under.
        parse_name: file name -> ``(video_id, crop)``, or ``None`` if the name is not of the format.

    Returns:
        ``(videos, bad_entries)``: videos by id (a video whose files cannot all be found carries a
        ``problem``), and ``"<list>:<line>: <reason>"`` for entries that name no video of the
        format.
    """
    by_name = index_features_root(root, lambda name: parse_name(name) is not None)
    videos: dict[str, VideoFiles] = {}
    bad: list[str] = []
    for spec in lists:
        for number, entry in enumerate(read_entries(spec.path), start=1):
            parsed = parse_name(posix_path(entry).name)
            if parsed is None:
                bad.append(
                    f"{spec.path.name}:{number}: {entry!r} is not a file name of this format"
                )
                continue
            video_id, crop = parsed
            video = videos.get(video_id)
            if video is None:
                video = videos[video_id] = VideoFiles(
                    video_id, spec.split, listed_as=f"{spec.path.name}:{number}"
                )
            elif video.split != spec.split:
                video.problem = f"listed in both the {video.split} and the {spec.split} list"
            if crop in video.files:
                video.problem = (
                    video.problem or f"crop {crop} listed twice ({spec.path.name}:{number})"
                )
                continue
            path, reason = resolve_entry(entry, root, by_name)
            if path is None:
                video.problem = video.problem or reason
            else:
                video.files[crop] = path
    return videos, bad


def group_scanned(
    root: Path, parse_name: Callable[[str], tuple[str, int] | None]
) -> dict[str, VideoFiles]:
    """Group every file of the format under ``root`` into videos (split unknown), sorted by id."""
    videos: dict[str, VideoFiles] = {}
    for name, paths in sorted(
        index_features_root(root, lambda n: parse_name(n) is not None).items()
    ):
        video_id, crop = parse_name(name)  # type: ignore[misc]  # accepted names parse
        video = videos.setdefault(video_id, VideoFiles(video_id, None, listed_as=name))
        if len(paths) > 1:
            shown = ", ".join(str(p.relative_to(root)) for p in paths[:3])
            video.problem = f"{name} is ambiguous under {root} ({len(paths)} files: {shown})"
        else:
            video.files[crop] = paths[0]
    return dict(sorted(videos.items()))
