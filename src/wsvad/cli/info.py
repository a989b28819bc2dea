"""``wsvad info`` (what a feature store holds) and ``wsvad backbones`` (what can fill one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console
from wsvad.cli.options import DebugOpt
from wsvad.errors import WsvadError

# Store attrs that `wsvad info` lists after the summary rows, in this order, when present.
_INFO_ATTRS = (
    "dataset",
    "backbone",
    "weights_sha256",
    "snippet_len",
    "stride",
    "tail",
    "fps",
    "resize",
    "crop_size",
    "crops",
    "crop_order",
    "decoder",
    "provenance",
    "wsvad_version",
    "created",
    "config_hash",
)

StoreArg = Annotated[
    Path | None, typer.Argument(metavar="STORE", help="Feature store to describe.")
]
InfoStoreOpt = Annotated[
    Path | None, typer.Option("--store", help="Same as the STORE argument. Default: none.")
]


@app.command()
def info(store_path: StoreArg = None, store: InfoStoreOpt = None, debug: DebugOpt = False) -> None:
    """Summarise a feature store: videos done / failed / pending, feature shape, disk size, attrs,
    failures."""
    from rich.table import Table

    from wsvad.pipeline.store import FeatureStore

    path = store_path or store
    if path is None:
        raise WsvadError("give a store: wsvad info STORE")
    fs = FeatureStore.open(path)
    origin = _origin(fs.attrs)
    # Imported features must never pass for extracted ones: the origin comes first, on one
    # unwrapped line.
    console.print(f"{path}: {origin}", markup=False, soft_wrap=True)
    table = Table(title=str(path), show_header=False)
    suspects = _suspects(fs)
    for key, value in _info_rows(fs.summary(), fs.attrs, origin):
        table.add_row(key, value)
        if key == "videos failed":
            table.add_row("videos suspect", str(len(suspects)))
    console.print(table)
    if suspects:
        console.print(f"suspect videos, stored; decoded length disagrees ({len(suspects)}):")
    for vid, suspect in sorted(suspects.items()):
        console.print(
            f"  {vid} [{suspect.get('cause') or 'length'}]: {suspect.get('reason')}",
            markup=False,
            soft_wrap=True,
        )
    failures = {k: v for k, v in fs.failures().items() if not fs.has_video(k)}
    if failures:
        console.print(f"failures ({len(failures)}):")
    for vid, failure in sorted(failures.items()):
        console.print(
            f"  {vid} [{plain(failure.get('decoder'), 'no decoder')}] "
            f"{plain(failure.get('exception'))}: {plain(failure.get('reason'))}",
            markup=False,
            soft_wrap=True,
        )


def _suspects(fs) -> dict[str, dict]:
    """The ``suspect`` attrs of the store's videos (wsvad.data.suspects) that have one."""
    found = {vid: fs.video_attrs(vid).get("suspect") for vid in fs.video_ids()}
    return {vid: suspect for vid, suspect in found.items() if suspect}


def _info_rows(summary: dict, attrs: dict, origin: str) -> list[tuple[str, str]]:
    """The (name, value) rows of ``wsvad info``: the store's summary, then its attrs."""
    pending = "unknown" if summary["pending"] is None else str(summary["pending"])
    shape = ", ".join(map(str, summary["feature_shape"]))
    rows = [
        ("origin", origin),
        ("videos done", str(summary["done"])),
        ("videos failed", str(summary["failed"])),
        ("videos pending", pending),
        ("rows are", _rows_are(attrs)),
        ("rows", str(summary["snippets"])),
        ("feature shape", f"[T, {shape}] {summary['dtype']}"),
        ("disk size", _human_bytes(summary["disk_bytes"])),
    ]
    for key in _INFO_ATTRS:
        if key in attrs:
            rows.append((key, plain(attrs[key], _UNSET.get(key, "-"))))
    return rows


# what an attr left unset (None) means, in words
_UNSET = {"fps": "native (not resampled)", "weights_sha256": "none (random or no weights)"}


def plain(value, unset: str = "-") -> str:
    """An attr value in words, never a Python repr: ``None`` -> ``unset``, lists joined with
    commas, mappings as ``key: value``.

    >>> plain({"kind": "imported", "format": "rtfm"}), plain([1, 2]), plain(None), plain(True)
    ('kind: imported, format: rtfm', '1, 2', '-', 'yes')
    """
    if value is None:
        return unset
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    return str(value)


def _rows_are(attrs: dict) -> str:
    bagged = attrs.get("bagged")
    if isinstance(bagged, dict) and bagged.get("T"):
        return f"segments, {bagged['T']} per video ({bagged.get('rule')} rule)"
    return f"snippets of {attrs['snippet_len']} frames" if attrs.get("snippet_len") else "snippets"


@app.command()
def backbones(debug: DebugOpt = False) -> None:
    """List the registered feature backbones."""
    from rich.table import Table

    from wsvad.extract.backbones import get_backbone_spec, list_backbones

    table = Table("name", "feature shape", "snippet len", "crop size", "resize", "weights sha256")
    notes = []
    for name in list_backbones():
        spec = get_backbone_spec(name)
        weights = spec.weights_sha256[:12] if spec.weights_sha256 else "none"
        table.add_row(
            name,
            str(list(spec.feature_shape)),
            str(spec.snippet_len),
            str(spec.crop_size),
            spec.resize,
            weights,
        )
        notes.append(f"{name}: {spec.description}")
    console.print(table)
    for note in notes:
        console.print(note, markup=False, soft_wrap=True)


@app.command()
def detectors(debug: DebugOpt = False) -> None:
    """List the detectors: paper, the features and store each needs, and its shipped configs."""
    from rich.table import Table

    from wsvad.detectors import detector_class, list_detectors
    from wsvad.detectors.causal import causal_summary
    from wsvad.detectors.papers import PAPERS

    table = Table("name", "paper", "features per snippet", "store", "configs")
    for name in list_detectors():
        cls = detector_class(name)
        table.add_row(
            name,
            PAPERS.get(name, "-"),
            _features_needed(cls.feature_ndim),
            _store_needed(cls.sampler),
            ", ".join(_shipped_configs(name)) or "-",
        )
    console.print(table)
    # Streaming (docs/streaming.md): whether `wsvad score --stream` equals the offline score.
    console.print("streaming (`wsvad score --stream`) with each detector's defaults:", markup=False)
    for name in list_detectors():
        console.print(f"  {name}: {causal_summary(name)}", markup=False, soft_wrap=True)
    console.print(
        "configs: configs/train/<name>.yaml (`wsvad train --config ...`); papers: docs/papers.md",
        markup=False,
        soft_wrap=True,
    )


def _features_needed(ndim: int) -> str:
    if ndim == 1:
        return "[D] (any backbone)"
    # the only 2-D features wsvad makes: I3D with its temporal axis kept
    return "[7, D] (--backbone i3d --set backbone_options.keep_time=true)"


def _store_needed(sampler: str) -> str:
    if sampler == "random_consecutive":
        return "snippets (not --segments)"
    return "snippets or segments (--segments T)"


def _shipped_configs(name: str) -> list[str]:
    """The ``configs/train/*_<name>.yaml`` of a source checkout (none in an installed wheel)."""
    import wsvad

    folder = Path(wsvad.__file__).resolve().parents[2] / "configs" / "train"
    return sorted(p.stem for p in folder.glob(f"*_{name}.yaml"))


def _origin(attrs: dict) -> str:
    """Where the features come from: ``extracted (backbone i3d)`` or
    ``imported (format rtfm, publisher backbone i3d_r50 (RTFM))``."""
    prov = attrs.get("provenance") or {}
    if prov.get("kind") != "imported":
        return f"{prov.get('kind') or 'extracted'} (backbone {attrs.get('backbone')})"
    if "concatenated" in prov:  # wsvad concat: say where each half came from
        parts = [
            f"{k} {_origin({'provenance': prov.get(k) or {}, 'backbone': k})}"
            for k in ("video", "audio")
        ]
        return f"imported (concatenated: {'; '.join(parts)})"
    publisher = prov.get("publisher_backbone")
    return f"imported (format {prov.get('format')}, publisher backbone {publisher})"


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
