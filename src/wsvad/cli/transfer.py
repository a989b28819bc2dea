"""``wsvad import`` and ``wsvad export``: published feature layouts in and out of feature stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wsvad.cli.app import app, console, err_console, progress_bar
from wsvad.errors import EXIT_OK, EXIT_PARTIAL

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config (configs/import/ or configs/export/); named options override it. Default: none.",
    ),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override any config key, key.path=value (repeatable). Default: none."
    ),
]
_SHOWN = 50


@app.command("import")
def import_(
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Published layout: rtfm, crops-per-file, sultani-c3d, video-features, vggish. Default: none (required).",
        ),
    ] = None,
    lists: Annotated[
        list[Path] | None,
        typer.Option(
            "--list",
            help="Published feature list (repeatable); a name containing 'test' holds test videos, else train. Default: none (scan --features-root).",
        ),
    ] = None,
    train_lists: Annotated[
        list[Path] | None,
        typer.Option(
            "--train-list",
            help="Feature list of training videos, whatever its name (repeatable). Default: none.",
        ),
    ] = None,
    test_lists: Annotated[
        list[Path] | None,
        typer.Option(
            "--test-list",
            help="Feature list of test videos, whatever its name (repeatable). Default: none.",
        ),
    ] = None,
    features_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder holding the published files; list entries are looked up here by file name. Default: none (required)."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset adapter giving labels, splits and frame GT (ucf, shanghaitech, xd, ...). Default: none (labels from the names)."
        ),
    ] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="The dataset's root folder, as for `wsvad check` (lists, annotations and videos). Default: none."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="The feature store to write (resumed if it exists with the same config). Default: none (required)."
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(
            help="video-features: the output key of <video>_<key>.npy (rgb, flow, vggish, r21d...). Default: rgb."
        ),
    ] = None,
    publisher_backbone: Annotated[
        str | None,
        typer.Option(
            help="What the publisher extracted with, for provenance. Default: the format's (e.g. 'i3d_r50 (RTFM)')."
        ),
    ] = None,
    snippet_len: Annotated[
        int | None,
        typer.Option(
            help="Frames per published snippet. Default: the format's (16; video-features i3d 64)."
        ),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(
            help="Frames between snippet starts. Default: the format's (16; video-features i3d 64)."
        ),
    ] = None,
    probe_frames: Annotated[
        bool,
        typer.Option(
            "--probe-frames",
            help="Count the frames of the dataset's videos for n_frames. Default: off (n_frames estimated as T x stride, RTFM's convention).",
        ),
    ] = False,
    checksum: Annotated[
        str | None,
        typer.Option(
            help="Per-file fingerprint: sha256 (content) or stat (size + mtime, no hashing). Default: sha256."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Videos imported at once (threads). Default: 2.")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace a store made with a different config. Default: off."
        ),
    ] = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
) -> None:
    """Import published features (RTFM, XD/UR-DMU per-crop, Sultani C3D, video_features, VGGish) into a store."""
    from wsvad.config import load_config
    from wsvad.transfer.config import ImportConfig
    from wsvad.transfer.import_features import run_import

    given = [{"path": p} for p in lists or []] + [
        {"path": p, "split": "train"} for p in train_lists or []
    ]
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
    with progress_bar("import") as bar:
        task = bar.add_task("import", total=None)
        result = run_import(cfg, progress=lambda _vid, _ok: bar.advance(task))
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
            title=f"{len(result.failed)} videos failed (recorded in {cfg.out}/failures.json)",
        )
        for vid, reason in sorted(result.failed.items())[:_SHOWN]:
            table.add_row(vid, reason)
        err_console.print(table)
    for line in result.bad_entries[:_SHOWN]:
        err_console.print(f"skipped list entry: {line}", markup=False)
    if result.missing:
        shown = ", ".join(result.missing[:5])
        err_console.print(
            f"{len(result.missing)} dataset videos have no features (e.g. {shown}); they are not in the store",
            markup=False,
        )
    if max(len(result.unmatched), len(result.failed), len(result.bad_entries)) > _SHOWN:
        err_console.print(
            f"the first {_SHOWN} of each are shown; all are in {cfg.out}/import-report.json"
        )
    console.print(
        f"{cfg.out}: imported {len(result.imported)}, already complete {len(result.skipped)}, "
        f"failed {len(result.failed)}, unmatched {len(result.unmatched)}",
        markup=False,
    )
    raise typer.Exit(EXIT_PARTIAL if result.partial else EXIT_OK)


@app.command("export")
def export(
    store: Annotated[
        Path | None, typer.Option(help="The feature store to export. Default: none (required).")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Layout to write: rtfm, crops-per-file, video-features, vggish. Default: none (required).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the feature files, <split>.list files and export.json. Default: none (required)."
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(help="video-features: the key written as <video>_<key>.npy. Default: rgb."),
    ] = None,
    path_prefix: Annotated[
        str | None,
        typer.Option(
            help="Folder written in the list files instead of the absolute --out path. Default: the absolute --out path."
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Export only the train or the test videos. Default: all.")
    ] = None,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
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
    stores: Annotated[
        list[Path] | None,
        typer.Option(
            "--store",
            help="A video store and an audio store (modality audio, from `wsvad import --format vggish`), in any order; give --store twice. Default: none (required).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="The concatenated store to write [T, crops, Dv + Da] (resumed if it exists with the same inputs). Default: none (required)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a store built from other inputs. Default: off."),
    ] = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
) -> None:
    """Concatenate video and audio features per snippet (XD-Violence I3D + VGGish, for salient with BiLSTM)."""
    from wsvad.config import load_config
    from wsvad.transfer.config import ConcatConfig
    from wsvad.transfer.modalities import LENGTH_RULE, run_concat

    cfg = load_config(
        ConcatConfig,
        config,
        flags={"stores": stores or None, "out": out, "overwrite": overwrite or None},
        sets=sets,
    )
    combined, pairing = run_concat(cfg)
    rows = [(vid, "video only (no audio features)") for vid in pairing.missing_audio]
    rows += [(vid, "audio only (no video features)") for vid in pairing.missing_video]
    rows += [
        (vid, f"lengths differ by more than one snippet: video T={tv}, audio T={ta}")
        for vid, (tv, ta) in sorted(pairing.length_gaps.items())
    ]
    if rows:
        table = Table("video id", "left out because", title=f"{len(rows)} videos not in {cfg.out}")
        for vid, why in rows[:_SHOWN]:
            table.add_row(vid, why)
        err_console.print(table)
        if len(rows) > _SHOWN:
            err_console.print(
                f"the first {_SHOWN} are shown; {cfg.out} attr expected_videos lists the videos it holds"
            )
    console.print(
        f"{cfg.out}: {len(pairing.usable)} videos, feature shape [T, {combined.crops}, {combined.feature_shape[0]}]; "
        f"length rule: {LENGTH_RULE}",
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_PARTIAL if pairing.partial else EXIT_OK)
