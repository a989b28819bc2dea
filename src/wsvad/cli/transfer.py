"""``wsvad import`` and ``wsvad export``: published feature layouts in and out of feature stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wsvad.cli.app import app, console, err_console
from wsvad.cli.extract import already_complete
from wsvad.cli.options import (
    ConfigOpt,
    DebugOpt,
    OverwriteStoreOpt,
    ProgressEveryOpt,
    SetsOpt,
    StoreOpt,
    StoreOutOpt,
)
from wsvad.cli.progress import DEFAULT_EVERY_S, Reporter
from wsvad.errors import EXIT_PARTIAL

Opt = typer.Option
_SHOWN = 50  # rows printed per table; the reports written next to the store list them all

# Options of import, export and concat only; the shared ones are in wsvad.cli.options.
ImportFormatOpt = Annotated[
    str | None,
    Opt(
        "--format",
        help="Published layout: rtfm, crops-per-file, sultani-c3d, video-features, vggish. "
        "Required.",
    ),
]
ListsOpt = Annotated[
    list[Path] | None,
    Opt(
        "--list",
        help="Published feature list (repeatable); a name containing 'test' holds test videos, "
        "else train. Default: none (scan --features-root).",
    ),
]
TrainListsOpt = Annotated[
    list[Path] | None,
    Opt(
        "--train-list",
        help="Feature list of training videos, whatever its name (repeatable). Default: none.",
    ),
]
TestListsOpt = Annotated[
    list[Path] | None,
    Opt(
        "--test-list",
        help="Feature list of test videos, whatever its name (repeatable). Default: none.",
    ),
]
FeaturesRootOpt = Annotated[
    Path | None,
    Opt(
        help="Folder holding the published files; list entries are looked up here by file name. "
        "Required."
    ),
]
LabelsDatasetOpt = Annotated[
    str | None,
    Opt(
        "--dataset",
        help="Dataset adapter giving labels, splits and frame GT (see `wsvad datasets`). "
        "Default: none (labels from the names).",
    ),
]
LabelsRootOpt = Annotated[
    Path | None,
    Opt(
        "--root",
        help="The dataset's root folder, as for `wsvad check` (lists, annotations and videos). "
        "Default: none.",
    ),
]
ImportStreamOpt = Annotated[
    str | None,
    Opt(
        "--stream",
        help="video-features: the output key of <video>_<key>.npy (rgb, flow, vggish, r21d...). "
        "Default: rgb.",
    ),
]
PublisherBackboneOpt = Annotated[
    str | None,
    Opt(
        help="What the publisher extracted with, for provenance. Default: the format's (e.g. "
        "'i3d_r50 (RTFM)')."
    ),
]
SnippetLenOpt = Annotated[
    int | None,
    Opt(help="Frames per published snippet. Default: the format's (16; video-features i3d 64)."),
]
StrideOpt = Annotated[
    int | None,
    Opt(help="Frames between snippet starts. Default: the format's (16; video-features i3d 64)."),
]
ProbeFramesOpt = Annotated[
    bool,
    Opt(
        "--probe-frames",
        help="Count the frames of the dataset's videos for n_frames. Default: off (n_frames "
        "estimated as T x stride, RTFM's convention).",
    ),
]
ChecksumOpt = Annotated[
    str | None,
    Opt(
        help="Per-file fingerprint: sha256 (content) or stat (size + mtime, no hashing). "
        "Default: sha256."
    ),
]
WorkersOpt = Annotated[int | None, Opt(help="Videos imported at once (threads). Default: 2.")]
ExportFormatOpt = Annotated[
    str | None,
    Opt(
        "--format",
        help="Layout to write: rtfm, crops-per-file, video-features, vggish. Required.",
    ),
]
ExportOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="Folder for the feature files, <split>.list files and export.json. Required.",
    ),
]
ExportStreamOpt = Annotated[
    str | None,
    Opt("--stream", help="video-features: the key written as <video>_<key>.npy. Default: rgb."),
]
PathPrefixOpt = Annotated[
    str | None,
    Opt(
        help="Folder written in the list files instead of the absolute --out path. "
        "Default: the absolute --out path."
    ),
]
SplitOpt = Annotated[
    str | None, Opt(help="Export only the train or the test videos. Default: all.")
]
ConcatStoresOpt = Annotated[
    list[Path] | None,
    Opt(
        "--store",
        help="A video store and an audio store (modality audio, from `wsvad import --format "
        "vggish`), in any order; give --store twice. Required.",
    ),
]
ConcatOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="The concatenated store to write [T, crops, Dv + Da] (resumed if it exists with the "
        "same inputs). Required.",
    ),
]
ConcatOverwriteOpt = Annotated[
    bool,
    Opt("--overwrite", help="Replace a store built from other inputs. Default: off."),
]


@app.command("import")
def import_(
    format: ImportFormatOpt = None,
    lists: ListsOpt = None,
    train_lists: TrainListsOpt = None,
    test_lists: TestListsOpt = None,
    features_root: FeaturesRootOpt = None,
    dataset: LabelsDatasetOpt = None,
    root: LabelsRootOpt = None,
    out: StoreOutOpt = None,
    stream: ImportStreamOpt = None,
    publisher_backbone: PublisherBackboneOpt = None,
    snippet_len: SnippetLenOpt = None,
    stride: StrideOpt = None,
    probe_frames: ProbeFramesOpt = False,
    checksum: ChecksumOpt = None,
    workers: WorkersOpt = None,
    overwrite: OverwriteStoreOpt = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    progress_every: ProgressEveryOpt = DEFAULT_EVERY_S,
    debug: DebugOpt = False,
) -> None:
    """Import published features (RTFM, XD/UR-DMU per-crop, Sultani C3D, video_features,
    VGGish) into a store."""
    from wsvad.config import load_config
    from wsvad.transfer.config import ImportConfig

    given = [{"path": p} for p in lists or []]
    given += [{"path": p, "split": "train"} for p in train_lists or []]
    given += [{"path": p, "split": "test"} for p in test_lists or []]
    flags = {
        "format": format,
        "lists": given or None,
        "features_root": features_root,
        "dataset": dataset,
        "root": root,
        "out": out,
        "stream": stream,
        "publisher_backbone": publisher_backbone,
        "snippet_len": snippet_len,
        "stride": stride,
        "probe_frames": probe_frames or None,
        "checksum": checksum,
        "workers": workers,
        "overwrite": overwrite or None,
    }
    cfg = load_config(ImportConfig, config, flags=flags, sets=sets)
    result = _import_with_progress(cfg, progress_every)
    _print_import_problems(result, cfg.out)
    console.print(
        f"{cfg.out}: imported {len(result.imported)}, already complete {len(result.skipped)}, "
        f"failed {len(result.failed)}, unmatched {len(result.unmatched)}",
        markup=False,
    )
    if result.partial:
        raise typer.Exit(EXIT_PARTIAL)


def _import_with_progress(cfg, every: float):
    """``run_import`` under the progress reporter (videos done; the total is not known ahead)."""
    from wsvad.transfer.import_features import run_import

    resumed = already_complete(cfg.out, cfg.overwrite)
    note = f"resumed: {resumed} videos already complete" if resumed else ""
    with Reporter("import", "videos", every) as reporter:
        done = [0]

        def progress(_vid: str, _ok: bool) -> None:
            done[0] += 1
            reporter.update(done[0], info=note)

        return run_import(cfg, progress=progress)


def _print_import_problems(result, out: Path) -> None:
    """Notes, unmatched and failed videos, skipped list entries and missing videos, on stderr."""
    for note in result.notes[:_SHOWN]:
        err_console.print(f"note: {note}", markup=False)
    if result.unmatched:
        table = Table(
            "video id",
            "split",
            "listed as",
            "reason",
            title=f"{len(result.unmatched)} videos with features but no labels (not imported)",
        )
        for u in result.unmatched[:_SHOWN]:
            table.add_row(u.video_id, u.split or "-", u.listed_as or "-", u.reason)
        err_console.print(table)
    if result.failed:
        table = Table(
            "video id",
            "reason",
            title=f"{len(result.failed)} videos failed (recorded in {out}/failures)",
        )
        for vid, reason in sorted(result.failed.items())[:_SHOWN]:
            table.add_row(vid, reason)
        err_console.print(table)
    for line in result.bad_entries[:_SHOWN]:
        err_console.print(f"skipped list entry: {line}", markup=False)
    if result.missing:
        shown = ", ".join(result.missing[:5])
        err_console.print(
            f"{len(result.missing)} dataset videos have no features (e.g. {shown}); they are not "
            "in the store",
            markup=False,
        )
    if max(len(result.unmatched), len(result.failed), len(result.bad_entries)) > _SHOWN:
        err_console.print(
            f"the first {_SHOWN} of each are shown; all are in {out}/import-report.json"
        )


@app.command("export")
def export(
    store: StoreOpt = None,
    format: ExportFormatOpt = None,
    out: ExportOutOpt = None,
    stream: ExportStreamOpt = None,
    path_prefix: PathPrefixOpt = None,
    split: SplitOpt = None,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write a store in a published layout (one file per video or per crop, plus list files)."""
    from wsvad.config import load_config
    from wsvad.transfer.config import ExportConfig
    from wsvad.transfer.export_features import run_export

    flags = {
        "store": store,
        "format": format,
        "out": out,
        "stream": stream,
        "path_prefix": path_prefix,
        "split": split,
    }
    cfg = load_config(ExportConfig, config, flags=flags, sets=sets)
    result = run_export(cfg)
    lists = ", ".join(str(p) for p in result.lists.values())
    console.print(
        f"{cfg.out}: {len(result.videos)} videos, {len(result.files)} files; lists: {lists}",
        markup=False,
    )
    if result.gt is not None:
        console.print(
            f"frame ground truth of the test list (RTFM convention): {result.gt}", markup=False
        )
    elif result.gt_note:
        err_console.print(result.gt_note, markup=False)


@app.command("concat")
def concat(
    stores: ConcatStoresOpt = None,
    out: ConcatOutOpt = None,
    overwrite: ConcatOverwriteOpt = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Concatenate video and audio features per snippet (XD-Violence I3D + VGGish, for salient
    with BiLSTM)."""
    from wsvad.config import load_config
    from wsvad.transfer.config import ConcatConfig
    from wsvad.transfer.modalities import LENGTH_RULE, run_concat

    flags = {"stores": stores or None, "out": out, "overwrite": overwrite or None}
    cfg = load_config(ConcatConfig, config, flags=flags, sets=sets)
    combined, pairing = run_concat(cfg)
    _print_left_out(pairing, cfg.out)
    console.print(
        f"{cfg.out}: {len(pairing.usable)} videos, feature shape "
        f"[T, {combined.crops}, {combined.feature_shape[0]}]; length rule: {LENGTH_RULE}",
        markup=False,
        soft_wrap=True,
    )
    if pairing.partial:
        raise typer.Exit(EXIT_PARTIAL)


def _print_left_out(pairing, out: Path) -> None:
    """The videos concat left out (one modality only, or lengths too far apart), on stderr."""
    rows = [(vid, "video only (no audio features)") for vid in pairing.missing_audio]
    rows += [(vid, "audio only (no video features)") for vid in pairing.missing_video]
    rows += [
        (vid, f"lengths differ by more than one snippet: video T={tv}, audio T={ta}")
        for vid, (tv, ta) in sorted(pairing.length_gaps.items())
    ]
    if not rows:
        return
    table = Table("video id", "left out because", title=f"{len(rows)} videos not in {out}")
    for vid, why in rows[:_SHOWN]:
        table.add_row(vid, why)
    err_console.print(table)
    if len(rows) > _SHOWN:
        err_console.print(
            f"the first {_SHOWN} are shown; {out} attr expected_videos lists the videos it holds"
        )
