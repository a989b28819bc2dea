"""Everything a feature store keeps besides its videos, kept as zarr nodes.

zarr 3 warns about every file or folder at a group's root that is not a zarr node, so
``zarr.open_group(STORE)`` and its listings stayed quiet only if the store held nothing else.
Every piece of bookkeeping is therefore a zarr group whose attrs carry the data (plain JSON)::

    STORE/.tmp/                 group: arrays being written, renamed into videos/ when complete
    STORE/failures/             group, attrs {video_id: failure}: the client's failure table
    STORE/failures/<writer>/    group, the same for one concurrent writer (job-array shard)
    STORE/.lock[-<writer>]/     group, attrs {host, pid, since, command}: the process writing the
                                store (wsvad.locks with ``group=True``)
    STORE/bags/                 group of bag caches (train stage)

The resolved extract config is the store attr ``config`` (``--config STORE`` reads it back).
Group metadata is written here as the zarr v3 ``zarr.json`` document itself, through a temporary
file and a rename (wsvad.atomic), so a reader never sees half of it; creating one that must not
exist yet (a group two writers may create at once) uses ``os.link``, which fails if it exists.

Stores written before this layout (``failures.json``, ``failures.d/*.json``, ``config.yaml``, plain
``.tmp/`` / ``bags/`` folders, ``.lock`` files) are still read (a ``.lock`` file by wsvad.locks);
``migrate`` converts them, and the extract client calls it once it holds the store's lock.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from wsvad.atomic import write_bytes_atomic

TMP = ".tmp"
FAILURES = "failures"
BAGS = "bags"
META = "zarr.json"
# the layout before this module (still read; converted by ``migrate``)
LEGACY_FAILURES = "failures.json"
LEGACY_FAILURES_DIR = "failures.d"
LEGACY_CONFIG = "config.yaml"


def group_document(attrs: dict[str, Any]) -> bytes:
    """The ``zarr.json`` of a zarr v3 group with ``attrs`` (plain JSON)."""
    doc = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def _temp_beside(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_group(folder: Path, attrs: dict[str, Any]) -> None:
    """Create or replace the group at ``folder`` with ``attrs`` (atomic, durable)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / META, group_document(attrs))


def create_group_exclusive(folder: Path, attrs: dict[str, Any]) -> bool:
    """Create the group at ``folder`` unless it exists; ``False`` when it already did.

    ``os.link`` publishes the complete document and fails if the name is taken, so exactly one of
    several concurrent creators wins and nobody overwrites attrs written meanwhile.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(folder / META, group_document(attrs))
    try:
        os.link(tmp, folder / META)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def ensure_group(folder: Path) -> Path:
    """``folder`` as an (empty-attrs) zarr group, leaving an existing group's attrs alone."""
    if not (folder / META).is_file():
        create_group_exclusive(folder, {})
    return folder


def group_attrs(folder: Path) -> dict[str, Any] | None:
    """The attrs of the group at ``folder``; ``None`` when there is none (or it is unreadable)."""
    try:
        doc = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    return attrs if isinstance(attrs, dict) else None


def tmp_entries(store: Path) -> list[Path]:
    """Half-written arrays under ``STORE/.tmp`` (not its group metadata, nor that document's
    temporary file while it is being created)."""
    folder = store / TMP
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name != META and not p.name.startswith(f".{META}.")
    )


def clean_tmp(store: Path) -> int:
    """Delete the half-written arrays of killed writers; returns how many were removed."""
    entries = tmp_entries(store)
    for entry in entries:
        shutil.rmtree(entry, ignore_errors=True)
    return len(entries)


# ---------------------------------------------------------------------------------- failures
def failure_group(store: Path, writer: str | None) -> Path:
    """The group holding the failures of ``writer`` (``None``: the client)."""
    return store / FAILURES if writer is None else store / FAILURES / writer


def read_failures(store: Path) -> dict[str, dict[str, Any]]:
    """Every recorded failure: the client's, every writer's, and those of the legacy files."""
    merged: dict[str, dict[str, Any]] = {}
    for path in _legacy_failure_files(store):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    folder = store / FAILURES
    merged.update(group_attrs(folder) or {})
    if folder.is_dir():
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            merged.update(group_attrs(child) or {})
    return merged


def update_failures(
    store: Path, writer: str | None, failures: dict[str, dict[str, Any]], clear: list[str]
) -> None:
    """Merge ``failures`` into ``writer``'s table and drop the ``clear`` ids (atomic rewrite)."""
    ensure_group(store / FAILURES)
    folder = failure_group(store, writer)
    current = dict(group_attrs(folder) or {})
    for vid in clear:
        current.pop(vid, None)
    current.update(failures)
    write_group(folder, current)


def _legacy_failure_files(store: Path) -> list[Path]:
    files = [store / LEGACY_FAILURES]
    if (store / LEGACY_FAILURES_DIR).is_dir():
        files += sorted((store / LEGACY_FAILURES_DIR).glob("*.json"))
    return [p for p in files if p.is_file()]


# ---------------------------------------------------------------------------------- migration
def migrate(store: Path) -> list[str]:
    """Convert a store's legacy bookkeeping into zarr groups; returns what it converted.

    Only the process holding the store's lock calls this (it rewrites the client's failures).
    """
    done: list[str] = []
    legacy = store / LEGACY_FAILURES
    if legacy.is_file():
        update_failures(store, None, json.loads(legacy.read_text(encoding="utf-8")), [])
        legacy.unlink()
        done.append(LEGACY_FAILURES)
    shards = store / LEGACY_FAILURES_DIR
    if shards.is_dir():
        for path in sorted(shards.glob("*.json")):
            update_failures(store, path.stem, json.loads(path.read_text(encoding="utf-8")), [])
        shutil.rmtree(shards)
        done.append(LEGACY_FAILURES_DIR)
    if (store / LEGACY_CONFIG).is_file():
        # the same resolved config is the store attr ``config``
        (store / LEGACY_CONFIG).unlink()
        done.append(LEGACY_CONFIG)
    for name in (TMP, BAGS):
        if (store / name).is_dir() and not (store / name / META).is_file():
            ensure_group(store / name)
            done.append(name)
    return done
