"""Reading the list and annotation files of shared dataset copies, and finding videos on disk.

Shared copies of the benchmarks differ in small ways that must not matter (all seen in the real
files under wsvad/data/benchmark_lists, see its SOURCES.md): CRLF line endings (RTFM lists,
salva-u copies), no final newline (ShanghaiTech and UR-DMU lists), trailing spaces (the UCF
temporal annotation ends every line with two), Windows paths
(``G:\\UCF_Test_ten_crop_i3d\\x_i3d.npy``), and per-crop feature lists (``<name>__<crop>.npy``,
``<name>_i3d.npy``) that name the same videos.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wsvad.data.records import Problem, ProblemKind

VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
# The one set of frame-folder image suffixes: `wsvad check`, the list parsers, frame counting and
# extraction all accept these and only these (extraction reads them with PIL, which reads all six).
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})

_CROP_SUFFIX = re.compile(r"__\d+$")
_INTEGER = re.compile(r"-?\d+$")
_FEATURE_SUFFIX = re.compile(r"_(i3d|c3d|x3d|clip|rgb)$", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """A non-blank line of a text file, stripped, with its 1-based line number."""

    number: int
    text: str


def read_lines(
    path: Path, problems: list[Problem], kind: ProblemKind = "unreadable-list"
) -> list[Line] | None:
    """Non-blank, stripped lines of ``path`` whatever its line endings; ``None`` if it cannot be
    read.

    A file that cannot be read or decoded adds an error of ``kind`` to ``problems`` instead of
    raising, so one bad file does not hide the other problems of a layout.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        problems.append(
            Problem("error", kind, f"{path}: cannot read ({exc.strerror or exc})", path=str(path))
        )
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem("error", kind, f"{path}: not UTF-8 text (byte {exc.start})", path=str(path))
        )
        return None
    # splitlines() accepts \n, \r\n and a lone \r, and ignores a missing final newline.
    return [Line(i, s.strip()) for i, s in enumerate(text.splitlines(), start=1) if s.strip()]


def absent_videos_warning(absent: list[str], root: Path) -> Problem:
    """One warning for every listed video kept without its file (``require_videos=False``)."""
    shown = ", ".join(absent[:3]) + (" ..." if len(absent) > 3 else "")
    return Problem(
        "warning",
        "video-not-on-disk",
        f"{len(absent)} listed videos are not under {root} ({shown}); "
        "kept with labels from the lists (require_videos=False)",
        None,
        str(root),
    )


def read_split_list(path: Path, problems: list[Problem]) -> list[tuple[str, str, int]]:
    """``(video_id, entry, line number)`` for each video of a split list.

    The lines of one video's crops in a per-crop feature list collapse to one.
    """
    out: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    previous = None
    for line in read_lines(path, problems) or []:
        tokens = line.text.split()
        if len(tokens) > 1 and all(_INTEGER.match(t) for t in tokens[1:]):
            line = Line(line.number, tokens[0])  # some copies add a numeric label column
        vid = video_stem(line.text)
        if not vid or " " in line.text:
            problems.append(
                Problem(
                    "error",
                    "bad-list-line",
                    f"{path}:{line.number}: not a video path: {line.text!r}",
                    path=str(path),
                )
            )
            continue
        if vid == previous and line.text.lower().endswith(".npy"):
            continue  # the next crop of the same video in a per-crop feature list
        previous = vid
        if vid in seen:
            problems.append(
                Problem(
                    "warning",
                    "duplicate",
                    f"{path}:{line.number}: {vid} listed again (first on line {seen[vid]})",
                    vid,
                    str(path),
                )
            )
            continue
        seen[vid] = line.number
        out.append((vid, line.text, line.number))
    return out


def posix_path(entry: str) -> PurePosixPath:
    """A list entry as a POSIX path: backslashes become slashes, a drive letter is dropped."""
    entry = entry.strip().replace("\\", "/")
    entry = re.sub(r"^[A-Za-z]:", "", entry)
    return PurePosixPath(entry)


def video_stem(entry: str) -> str:
    """The video name a list entry refers to, whether it names a video or a feature file.

    ``Abuse/Abuse028_x264.mp4``, ``G:\\feats\\Abuse028_x264_i3d.npy`` and
    ``dataset/Abuse/Abuse028_x264__3.npy`` all give ``Abuse028_x264``.

    >>> video_stem("G:\\\\UCF_Test_ten_crop_i3d\\\\Abuse028_x264_i3d.npy")
    'Abuse028_x264'
    >>> video_stem("/f/Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6__0.npy")
    'Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6'
    """
    name = posix_path(entry).name
    lower = name.lower()
    if lower.endswith(".npy"):
        name = _FEATURE_SUFFIX.sub("", _CROP_SUFFIX.sub("", name[:-4]))
    elif os.path.splitext(lower)[1] in VIDEO_EXTS:
        name = name[: -len(os.path.splitext(name)[1])]
    return name


def find_file(root: Path, names: tuple[str, ...], max_depth: int = 3) -> Path | None:
    """The first file under ``root`` (breadth first, shallowest wins) whose name is one of
    ``names``.

    Matching ignores case, because shared copies spell ``Anomaly_Test.txt`` several ways.
    """
    wanted = [n.lower() for n in names]
    level = [root]
    for _ in range(max_depth + 1):
        found: dict[str, Path] = {}
        nxt: list[Path] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.name.startswith("."):
                    nxt.append(Path(entry.path))
                elif entry.name.lower() in wanted and entry.name.lower() not in found:
                    found[entry.name.lower()] = Path(entry.path)
        for name in wanted:  # earlier names in ``names`` are preferred at the same depth
            if name in found:
                return found[name]
        level = nxt
    return None


@dataclass
class MediaIndex:
    """Every video file and frame folder under a root, found in one walk and looked up by name."""

    root: Path
    by_stem: dict[str, list[Path]]

    def find(self, stem: str, prefer_parent: str | None = None) -> tuple[Path | None, list[Path]]:
        """The path for ``stem`` (``None`` if absent) and all candidates, preferring a parent
        folder."""
        candidates = self.by_stem.get(stem, [])
        if not candidates:
            return None, []
        if prefer_parent:
            for cand in candidates:
                if cand.parent.name.lower() == prefer_parent.lower():
                    return cand, candidates
        return candidates[0], candidates


def index_media(root: Path) -> MediaIndex:
    """Walk ``root`` once: video files by stem, and leaf folders of images (frame folders) by name.

    Hidden entries are skipped. Candidates are sorted so the result does not depend on the file
    system.
    """
    by_stem: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        has_images = False
        for name in filenames:
            ext = os.path.splitext(name)[1].lower()
            if ext in VIDEO_EXTS and not name.startswith("."):
                by_stem.setdefault(name[: -len(ext)], []).append(folder / name)
            elif is_frame_image(name):
                has_images = True
        if has_images and not dirnames and folder != root:
            by_stem.setdefault(folder.name, []).append(folder)
    for paths in by_stem.values():
        paths.sort()
    return MediaIndex(root, by_stem)


def rel_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with POSIX separators."""
    return Path(os.path.relpath(path, root)).as_posix()


def is_frame_image(name: str) -> bool:
    """An image of a frame folder: an :data:`IMAGE_EXTS` suffix, not hidden (macOS ``._0001.jpg``
    resource forks carry the suffix but are not images)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTS


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def frame_images(folder: Path) -> list[Path]:
    """The frames of a frame folder in natural order (``2.jpg`` before ``10.jpg``)."""
    names = [e.name for e in os.scandir(folder) if is_frame_image(e.name) and e.is_file()]
    return [Path(folder) / name for name in sorted(names, key=_natural_key)]


def count_images(folder: Path) -> int:
    """Number of frames of a frame folder (:func:`frame_images`)."""
    return sum(1 for e in os.scandir(folder) if is_frame_image(e.name) and e.is_file())
