"""The published feature layouts wsvad reads and writes, one registry entry per layout.

A format knows how its file names encode a video id and a crop, how to open one video's files as a
lazily read ``[T, C, *D]`` source (``np.load(mmap_mode="r")``: a 40 GB set is never in memory), and,
when the layout can hold a store's values exactly, how to write one video back.

Crop orders (recorded in the store's ``crop_order`` attr, because they differ between publishers):
- ``rtfm``: the RTFM author used "the Pytorch official 10-crop function" (tianyu0207/RTFM issue
  #33), i.e. torchvision ``TenCrop``: TL, TR, BL, BR, C, then the same five of the flipped frame.
  That is wsvad's own extraction order, so the names come from
  :func:`wsvad.extract.crops.crop_order`.
- ``crops-per-file`` (XD-Violence, UR-DMU, Wu et al.): ``__0`` is the centre crop (XDVioDet
  README), unlike wsvad's order where the centre is crop 4; the order of the corners ``__1..__4``
  (and of ``__5..__9``) is not documented, so they are recorded as ``corner-k``/``flip-...`` names
  that claim nothing more. wsvad keeps the file order (no reordering), so export gives back the
  publisher's files unchanged; code that wants the centre crop looks up
  ``crop_order.index("C")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wsvad.errors import WsvadError
from wsvad.extract.crops import crop_order as wsvad_crop_order

# A format's export plan: (video_id, n_crops) -> [(file name, crop index or None for all crops)].
ExportNames = Callable[[str, int], list[tuple[str, int | None]]]


@dataclass
class Source:
    """One video's published features, opened lazily.

    Attributes:
        shape: ``(T, C, *D)`` of the stacked features.
        dtype: numpy dtype name of the files (kept: the store holds the same bits).
        read: ``(start, stop) -> ndarray [stop-start, C, *D]``.
        fps: frames per second when the publisher saved it (video_features ``_fps.npy``).
    """

    shape: tuple[int, ...]
    dtype: str
    read: Callable[[int, int], np.ndarray]
    fps: float | None = None


@dataclass(frozen=True)
class FeatureFormat:
    """A published layout.

    Attributes:
        name: registry key (``--format``).
        summary: one line for help texts.
        parse_name: file name -> ``(video_id, crop)``, ``None`` for files of other layouts.
        open: crop-ordered file paths -> :class:`Source`.
        backbone: store ``backbone`` attr (always ``imported:...``).
        publisher_backbone: what the publisher extracted with, for provenance.
        modality: ``video`` or ``audio``.
        snippet_len: frames per snippet of the published extraction (``None``: not snippet-based).
        stride: frames between snippet starts.
        crop_order: number of crops -> crop names.
        export_names: the files one video is written to, or ``None`` when the layout cannot hold a
            store's values exactly (Sultani's ``%f`` text rounds them).
        bagged: ``{"rule", "T"}`` when the published rows are already bag means, not snippets.
        crop_note: where the crop order comes from (store provenance).
    """

    name: str
    summary: str
    parse_name: Callable[[str], tuple[str, int] | None]
    open: Callable[[list[Path]], Source]
    backbone: str
    publisher_backbone: str
    modality: str = "video"
    snippet_len: int | None = 16
    stride: int | None = 16
    crop_order: Callable[[int], list[str]] = lambda n: (
        ["C"] if n == 1 else [f"crop-{k}" for k in range(n)]
    )
    export_names: ExportNames | None = None
    bagged: dict[str, Any] | None = None
    crop_note: str = "one crop per video"


# name -> factory(stream) -> FeatureFormat; only video-features uses the stream (its file suffix).
_FORMATS: dict[str, Callable[[str], FeatureFormat]] = {}


def register_format(name: str, factory: Callable[[str], FeatureFormat]) -> None:
    if name in _FORMATS:
        raise ValueError(f"feature format {name!r} registered twice")
    _FORMATS[name] = factory


def get_format(name: str, stream: str = "rgb") -> FeatureFormat:
    """The format ``name``; ``stream`` picks the video_features output key (``rgb``,
    ``vggish``...)."""
    if name not in _FORMATS:
        raise WsvadError(f"unknown feature format {name!r}; known: {', '.join(sorted(_FORMATS))}")
    return _FORMATS[name](stream)


def _fixed(fmt: FeatureFormat) -> None:
    register_format(fmt.name, lambda _stream: fmt)


# ---------------------------------------------------------------------------------------- reading
def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WsvadError(f"{path}: not a readable .npy file ({exc})") from exc


def _open_stacked(paths: list[Path]) -> Source:
    """One file per video holding ``[T, C, D]`` (RTFM)."""
    (path,) = paths
    arr = _load_npy(path)
    if arr.ndim != 3:
        raise WsvadError(f"{path}: expected [T, crops, D], got shape {list(arr.shape)}")
    return Source(tuple(arr.shape), arr.dtype.name, lambda a, b: arr[a:b])


def _open_per_crop(paths: list[Path]) -> Source:
    """One ``[T, D]`` file per crop, stacked along a new crop axis."""
    arrays = [_load_npy(p) for p in paths]
    for path, arr in zip(paths, arrays, strict=True):  # one array per path
        if arr.ndim != 2:
            raise WsvadError(f"{path}: expected [T, D], got shape {list(arr.shape)}")
        if arr.shape != arrays[0].shape or arr.dtype != arrays[0].dtype:
            raise WsvadError(
                f"{path}: shape {list(arr.shape)} {arr.dtype} differs from crop 0 "
                f"({paths[0].name}: {list(arrays[0].shape)} {arrays[0].dtype})"
            )
    T, D = arrays[0].shape
    return Source(
        (T, len(arrays), D),
        arrays[0].dtype.name,
        lambda a, b: np.stack([x[a:b] for x in arrays], axis=1),
    )


def _open_single(paths: list[Path]) -> Source:
    """One ``[T, D]`` file per video (video_features, VGGish): one "crop"."""
    (path,) = paths
    arr = _load_npy(path)
    if arr.ndim != 2:
        raise WsvadError(f"{path}: expected [T, D], got shape {list(arr.shape)}")
    fps = None
    # video_features saves the source fps next to the features as <video>_fps.npy (a 0-d array).
    fps_file = path.with_name(re.sub(r"_[A-Za-z0-9]+\.npy$", "_fps.npy", path.name))
    if fps_file != path and fps_file.is_file():
        fps = float(np.load(fps_file, allow_pickle=False))
    return Source((arr.shape[0], 1, arr.shape[1]), arr.dtype.name, lambda a, b: arr[a:b, None], fps)


def _open_sultani(paths: list[Path]) -> Source:
    """Sultani et al.'s text files: 32 lines of 4096 ``%f`` values (L2-normalised segment means)."""
    (path,) = paths
    try:
        rows = [
            line.split() for line in path.read_text(encoding="ascii").splitlines() if line.strip()
        ]
    except (OSError, UnicodeDecodeError) as exc:
        raise WsvadError(f"{path}: cannot read C3D text features ({exc})") from exc
    widths = sorted({len(r) for r in rows})
    if len(rows) != 32 or widths != [4096]:
        raise WsvadError(
            f"{path}: expected 32 rows of 4096 values, got {len(rows)} rows of {widths} values"
        )
    try:
        feats = np.array(rows, dtype=np.float32)
    except ValueError as exc:
        raise WsvadError(f"{path}: non-numeric value in C3D text features ({exc})") from exc
    return Source((32, 1, 4096), "float32", lambda a, b: feats[a:b, None])


# ---------------------------------------------------------------------------------------- writing
def _stacked_names(video_id: str, n_crops: int) -> list[tuple[str, int | None]]:
    return [(f"{video_id}_i3d.npy", None)]


def _per_crop_names(video_id: str, n_crops: int) -> list[tuple[str, int | None]]:
    return [(f"{video_id}__{k}.npy", k) for k in range(n_crops)]


def _single_names(suffix: str) -> ExportNames:
    def names(video_id: str, n_crops: int) -> list[tuple[str, int | None]]:
        if n_crops != 1:
            raise WsvadError(
                f"{video_id}: this layout holds one crop per video, the store has {n_crops}"
            )
        return [(f"{video_id}{suffix}", 0)]

    return names


# ---------------------------------------------------------------------------------------- names
def _suffix_parser(pattern: str) -> Callable[[str], tuple[str, int] | None]:
    regex = re.compile(pattern)

    def parse(name: str) -> tuple[str, int] | None:
        m = regex.fullmatch(name)
        if m is None or not m.group("id"):
            return None
        return m.group("id"), int(m.groupdict().get("crop") or 0)

    return parse


def _per_crop_order(n: int) -> list[str]:
    if n == 10:
        return [
            "C",
            *[f"corner-{k}" for k in range(1, 5)],
            "flip-C",
            *[f"flip-corner-{k}" for k in range(1, 5)],
        ]
    return ["C", *[f"corner-{k}" for k in range(1, n)]]


def _rtfm_order(n: int) -> list[str]:
    return wsvad_crop_order(n) if n in (1, 5, 10) else [f"crop-{k}" for k in range(n)]


def video_features_format(stream: str) -> FeatureFormat:
    """The video_features tool's layout for one output key: ``<video>_<stream>.npy``, ``[T, D]``.

    The tool saves ``<output_path>/<feature_type>/<video stem>_<key>.npy`` with keys
    ``rgb``/``flow``
    for i3d and the feature type for the others (``vggish``, ``r21d``, ``s3d``, ``clip``...), plus
    ``_fps.npy`` and ``_timestamps_ms.npy`` side files. Its i3d default is 64-frame stacks every 64
    frames (``stack_size``/``step_size``), not 16.
    """
    if not re.fullmatch(r"[A-Za-z0-9]+", stream) or stream in ("fps", "timestamps"):
        raise WsvadError(
            f"--stream {stream!r}: expected a video_features output key such as rgb, flow or vggish"
        )
    is_i3d = stream in ("rgb", "flow")
    return FeatureFormat(
        name="video-features",
        summary="video_features tool outputs, <video>_<stream>.npy [T, D]",
        parse_name=_suffix_parser(rf"(?P<id>.+)_{stream}\.npy"),
        open=_open_single,
        backbone=f"imported:{'i3d' if is_i3d else stream}",
        publisher_backbone=f"{'i3d ' + stream if is_i3d else stream} (video_features)",
        modality="audio" if stream == "vggish" else "video",
        snippet_len=64 if is_i3d else None,
        stride=64 if is_i3d else None,
        export_names=_single_names(f"_{stream}.npy"),
    )


_fixed(
    FeatureFormat(
        name="rtfm",
        summary="one <video>_i3d.npy [T, 10, 2048] per video (RTFM, MGFN: ResNet50-I3D ten-crop)",
        parse_name=_suffix_parser(r"(?P<id>.+?)(_i3d)?\.npy"),
        open=_open_stacked,
        backbone="imported:i3d_r50",
        publisher_backbone="i3d_r50 (RTFM)",
        crop_order=_rtfm_order,
        crop_note="torchvision TenCrop order (RTFM issue #33), the same as wsvad's extraction",
        export_names=_stacked_names,
    )
)
_fixed(
    FeatureFormat(
        name="crops-per-file",
        summary=(
            "<video>__<k>.npy [T, D] per crop, __0 the centre "
            "(XD-Violence, UR-DMU, Wu et al.: I3D 1024)"
        ),
        parse_name=_suffix_parser(r"(?P<id>.+)__(?P<crop>\d+)\.npy"),
        open=_open_per_crop,
        backbone="imported:i3d",
        publisher_backbone="i3d (Wu et al. / UR-DMU per-crop release)",
        crop_order=_per_crop_order,
        crop_note=(
            "file order __0..__k kept; __0 is the centre (XDVioDet README), "
            "corner order undocumented"
        ),
        export_names=_per_crop_names,
    )
)
_fixed(
    FeatureFormat(
        name="sultani-c3d",
        summary=(
            "Sultani et al. <video>_C.txt: 32 L2-normalised C3D fc6 segment means x 4096 values"
        ),
        parse_name=_suffix_parser(r"(?P<id>.+?)(_C)?\.txt"),
        open=_open_sultani,
        backbone="imported:c3d",
        publisher_backbone="c3d_fc6 (Sultani et al., 32 segments)",
        snippet_len=None,
        stride=None,
        bagged={"rule": "sultani", "T": 32},
    )
)
_fixed(
    FeatureFormat(
        name="vggish",
        summary="XD-Violence audio <video>__vggish.npy [T, 128] (also video_features' _vggish.npy)",
        parse_name=_suffix_parser(r"(?P<id>.+?)__?vggish\.npy"),
        open=_open_single,
        backbone="imported:vggish",
        publisher_backbone="vggish (XD-Violence, Wu et al.)",
        modality="audio",
        # XDVioDet pairs audio feature i with RGB snippet i (the audio list has one line per video).
        snippet_len=None,
        stride=None,
        export_names=_single_names("__vggish.npy"),
    )
)
register_format("video-features", video_features_format)


def list_formats() -> list[str]:
    """Names accepted by ``--format``."""
    return sorted(_FORMATS)
