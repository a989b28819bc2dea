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
    for key, value in _info_rows(fs.summary(), fs.attrs, origin):
        table.add_row(key, value)
    console.print(table)
    failures = {k: v for k, v in fs.failures().items() if not fs.has_video(k)}
    if failures:
        console.print(f"failures ({len(failures)}):")
    for vid, failure in sorted(failures.items()):
        console.print(
            f"  {vid} [{failure.get('decoder')}] {failure.get('exception')}: "
            f"{failure.get('reason')}",
            markup=False,
            soft_wrap=True,
        )


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
            value = attrs[key]
            rows.append(
                (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
            )
    return rows


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
