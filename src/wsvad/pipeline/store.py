"""The feature store: the only contract between extract (or import) and train/evaluate.

Layout (schema ``wsvad.features/1``, zarr v3, see docs/architecture.md)::

    STORE/zarr.json            store attrs (written only by the client process)
    STORE/videos/<node>/       one array per COMPLETE video, [T, crops, *feature_shape]
    STORE/.tmp/<node>.<tag>/   arrays being written; renamed into videos/ when complete
    STORE/failures/            group; attrs {video_id: {...}}, written atomically by the client
    STORE/failures/<writer>/   the same, one per concurrent writer (job-array shard)
    STORE/.lock/               group; attrs name the process writing the store
    STORE/bags/...             derived caches (train stage)

Everything is a zarr node, so ``zarr.open_group(STORE)`` lists without warnings (bookkeeping.py).

Completion is the directory rename: a reader can never see a half-written video, and a killed job
leaves only ``.tmp`` debris, which the next run deletes and redoes. One writer per video group and
no shared mutable metadata written by workers, so many processes (or SLURM tasks) can write at
once. Video ids name their arrays as nodes.py says.
This module imports no torch, so a store opens in a notebook without it; zarr (0.3 s to import)
only where arrays are written or read, so reading attrs (``wsvad evaluate``) never imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from wsvad import __version__, locks
from wsvad.errors import WsvadError
from wsvad.pipeline import bookkeeping
from wsvad.pipeline.bookkeeping import TMP
from wsvad.pipeline.nodes import node_name, video_id_of

if TYPE_CHECKING:
    import zarr

SCHEMA = "wsvad.features/1"
LOCK = locks.LOCK
VIDEOS = "videos"
# ~64 snippets per chunk: 2.6 MB for 10 crops x 1024 float32, small enough to read one bag range.
# store attr provenance.kind: features computed by `wsvad extract`, or read from published files
ProvenanceKind = Literal["extracted", "imported"]
DEFAULT_CHUNK_T = 64


def _json_safe(value: Any) -> Any:
    """Round-trip through JSON so zarr attrs only ever hold plain JSON (numpy scalars, tuples,
    Paths)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    return json.loads(json.dumps(value, default=default))


class StoreWriteError(WsvadError):
    """The store's filesystem refused a write (disk full, read-only, no permission).

    A subclass of WsvadError, not OSError: decoders raise OSError for bad videos, and a full disk
    must stop the run (exit 1) instead of marking every remaining video as failed.
    """


def store_write_error(path: Path, exc: OSError) -> StoreWriteError:
    where = exc.filename or path
    return StoreWriteError(
        f"{where}: cannot write the feature store ({exc.strerror or exc}); videos already "
        "complete are kept: free space or fix permissions, then run the same command to resume"
    )


class VideoWriter:
    """Streams one video's features into ``.tmp`` and publishes them with an atomic rename.

    Use as a context manager: leaving the block without :meth:`commit` deletes the partial array.
    """

    def __init__(
        self, store: FeatureStore, video_id: str, n_crops: int, chunk_t: int = DEFAULT_CHUNK_T
    ):
        self.store = store
        self.video_id = video_id
        self.node = node_name(video_id)
        self.tmp_dir = (
            store.path
            / TMP
            / f"{self.node}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        )
        feature_shape = tuple(store.feature_shape)
        self.n_rows = 0
        try:
            bookkeeping.ensure_group(self.tmp_dir.parent)
            self._array = self._create(n_crops, feature_shape, chunk_t)
        except OSError as exc:
            raise store_write_error(self.tmp_dir, exc) from exc

    def _create(self, n_crops: int, feature_shape: tuple[int, ...], chunk_t: int) -> zarr.Array:
        import zarr
        from zarr.codecs import BloscCodec

        store = self.store
        return zarr.create_array(
            store=str(self.tmp_dir),
            shape=(0, n_crops, *feature_shape),
            chunks=(chunk_t, n_crops, *feature_shape),
            dtype=store.dtype,
            compressors=[
                BloscCodec(
                    cname="zstd",
                    clevel=3,
                    shuffle="bitshuffle" if store.dtype == "float16" else "shuffle",
                )
            ],
            fill_value=0,
        )

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` of shape ``[n, crops, *feature_shape]``."""
        rows = np.asarray(rows)
        expected = self._array.shape[1:]
        if rows.ndim != len(expected) + 1 or tuple(rows.shape[1:]) != tuple(expected):
            shape = ", ".join(map(str, expected))
            raise ValueError(f"{self.video_id}: rows of shape {rows.shape} do not fit [n, {shape}]")
        if len(rows) == 0:
            return
        start = self.n_rows
        try:
            self._array.resize((start + len(rows), *expected))
            self._array[start : start + len(rows)] = rows.astype(self.store.dtype, copy=False)
        except OSError as exc:
            raise store_write_error(self.tmp_dir, exc) from exc
        self.n_rows += len(rows)

    def commit(self, attrs: dict[str, Any]) -> None:
        """Write the per-video attrs, then publish the array (the rename is the completion
        marker)."""
        full = dict(attrs)
        full.update(video_id=self.video_id, n_snippets=self.n_rows, status="complete")
        final = self.store.path / VIDEOS / self.node
        try:
            self._array.attrs.update(_json_safe(full))
            if final.exists():
                # Another writer finished the same video first (or --overwrite of one video):
                # replace it.
                shutil.rmtree(final)
            os.rename(self.tmp_dir, final)
        except OSError as exc:
            raise store_write_error(self.tmp_dir, exc) from exc

    def abort(self) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, *_: object) -> None:
        if self.tmp_dir.exists():
            self.abort()


class FeatureStore:
    """A zarr v3 feature store on a local or shared POSIX filesystem."""

    def __init__(self, path: Path, attrs: dict[str, Any]):
        self.path = Path(path)
        self._attrs = dict(attrs)

    # ------------------------------------------------------------------ open / create
    @classmethod
    def is_store(cls, path: Path | str) -> bool:
        meta = Path(path) / "zarr.json"
        if not meta.is_file():
            return False
        try:
            return (
                json.loads(meta.read_text())
                .get("attributes", {})
                .get("schema", "")
                .startswith("wsvad.features/")
            )
        except (OSError, json.JSONDecodeError):
            return False

    @classmethod
    def open(cls, path: Path | str) -> FeatureStore:
        """Open an existing store; a clear error if ``path`` is not one."""
        path = Path(path)
        if not path.exists():
            raise WsvadError(f"{path}: no such feature store")
        if not (path / "zarr.json").is_file():
            raise WsvadError(
                f"{path}: not a feature store (no zarr.json; was it written by `wsvad extract`?)"
            )
        attrs = _group_attrs(path)
        schema = attrs.get("schema")
        if schema != SCHEMA:
            raise WsvadError(
                f"{path}: unsupported store schema {schema!r} (this wsvad reads {SCHEMA!r})"
            )
        return cls(path, attrs)

    @classmethod
    def create(
        cls, path: Path | str, attrs: dict[str, Any], *, overwrite: bool = False
    ) -> FeatureStore:
        """Create a store, or reopen it when it was made with the same ``config_hash``.

        Raises:
            WsvadError: the path holds a store made with a different config (unless ``overwrite``),
                or something that is not a store.
        """
        path = Path(path)
        required = {"feature_shape", "dtype", "crops", "backbone"}
        missing = required - set(attrs)
        if missing:
            raise ValueError(f"store attrs lack {sorted(missing)}")
        if path.exists() and any(path.iterdir()):
            if not cls.is_store(path):
                raise WsvadError(
                    f"{path}: exists and is not a wsvad feature store; choose another --out"
                )
            existing = cls.open(path)
            if overwrite:
                shutil.rmtree(path)
            elif existing.attrs.get("config_hash") != attrs.get("config_hash"):
                diff = _describe_config_diff(
                    existing.attrs.get("config", {}), attrs.get("config", {})
                )
                raise WsvadError(
                    f"{path}: store was made with a different config ({diff}); "
                    "use --overwrite to replace it or choose another --out"
                )
            else:
                return existing
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WsvadError(
                f"{path}: cannot create store directory: {exc.strerror or exc}"
            ) from exc
        if not os.access(path, os.W_OK):
            raise WsvadError(f"{path}: output directory is not writable")
        full = {
            "schema": SCHEMA,
            "wsvad_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        full.update(attrs)
        full["feature_shape"] = [int(d) for d in attrs["feature_shape"]]
        import zarr

        full = _json_safe(full)
        group = zarr.open_group(str(path), mode="w", attributes=full, zarr_format=3)
        group.create_group(VIDEOS)
        return cls(path, full)

    # ------------------------------------------------------------------ store-level facts
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._attrs)

    def update_attrs(self, **values: Any) -> None:
        """Client-side only: workers must never call this (one writer for the root metadata)."""
        import zarr

        group = zarr.open_group(str(self.path), mode="r+", use_consolidated=False)
        group.attrs.update(_json_safe(values))
        self._attrs.update(_json_safe(values))

    @property
    def provenance_kind(self) -> ProvenanceKind:
        """How the features were made: ``extracted`` by wsvad or ``imported`` from files."""
        return (self._attrs.get("provenance") or {}).get("kind", "extracted")

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self._attrs["feature_shape"])

    @property
    def crops(self) -> int:
        return int(self._attrs["crops"])

    @property
    def dtype(self) -> str:
        return str(self._attrs.get("dtype", "float32"))

    # ------------------------------------------------------------------ videos
    def _videos_dir(self) -> Path:
        return self.path / VIDEOS

    def video_ids(self) -> list[str]:
        """Ids of all complete videos, sorted (the evaluation order)."""
        folder = self._videos_dir()
        if not folder.is_dir():
            return []
        return sorted(video_id_of(p.name) for p in folder.iterdir() if (p / "zarr.json").is_file())

    def has_video(self, video_id: str) -> bool:
        return (self._videos_dir() / node_name(video_id) / "zarr.json").is_file()

    def array(self, video_id: str) -> zarr.Array:
        """The zarr array of one complete video, ``[T, crops, *feature_shape]``."""
        if not self.has_video(video_id):
            raise WsvadError(f"{self.path}: no complete video {video_id!r} in the store")
        import zarr

        return zarr.open_array(str(self._videos_dir() / node_name(video_id)), mode="r")

    def video_attrs(self, video_id: str) -> dict[str, Any]:
        """One complete video's attrs, read from its array's ``zarr.json`` (zarr v3 keeps them
        under ``attributes``) without opening the array: zarr's open costs ~0.6 ms a video
        through its event loop, 1.2 s for UCF-Crime's 1,900 videos, which evaluate and train read
        whole."""
        meta = self._videos_dir() / node_name(video_id) / "zarr.json"
        try:
            text = meta.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WsvadError(f"{self.path}: no complete video {video_id!r} in the store") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise WsvadError(f"{meta}: cannot read the video's metadata ({exc})") from exc
        try:
            attrs = json.loads(text).get("attributes", {})
        except (json.JSONDecodeError, AttributeError) as exc:
            raise WsvadError(f"{meta}: not zarr array metadata (not a JSON object)") from exc
        return dict(attrs)

    def read(self, video_id: str) -> np.ndarray:
        """One video's features as numpy, ``[T, crops, *feature_shape]``."""
        return self.array(video_id)[...]

    def iter_videos(self) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
        """Yield ``(video_id, features, attrs)`` for every complete video, one at a time."""
        for vid in self.video_ids():
            arr = self.array(vid)
            yield vid, arr[...], dict(arr.attrs)

    def dask(self, video_id: str):  # -> dask.array.Array (import kept lazy)
        """One video's features as a lazy dask array (chunks follow the zarr chunks)."""
        import dask.array as da

        return da.from_zarr(self.array(video_id))

    def read_all_dask(self) -> dict[str, Any]:
        """All complete videos as lazy dask arrays, keyed by video id (nothing is loaded)."""
        return {vid: self.dask(vid) for vid in self.video_ids()}

    def writer(self, video_id: str, chunk_t: int = DEFAULT_CHUNK_T) -> VideoWriter:
        return VideoWriter(self, video_id, self.crops, chunk_t=chunk_t)

    def write_video(self, video_id: str, features: np.ndarray, attrs: dict[str, Any]) -> None:
        """Write a whole video at once (atomic)."""
        with self.writer(video_id) as w:
            w.append(features)
            w.commit(attrs)

    def delete_video(self, video_id: str) -> None:
        shutil.rmtree(self._videos_dir() / node_name(video_id), ignore_errors=True)

    def clean_tmp(self) -> int:
        """Delete half-written arrays left by killed jobs; returns how many were removed."""
        return bookkeeping.clean_tmp(self.path)

    # ------------------------------------------------------------------ failures
    def failures(self) -> dict[str, dict[str, Any]]:
        """Failed videos that are not complete: the client's failure table merged with every
        writer's (and with a legacy store's ``failures.json`` / ``failures.d``)."""
        merged = bookkeeping.read_failures(self.path)
        # a video completed by a later run (or another writer) is no longer a failure
        return {vid: failure for vid, failure in merged.items() if not self.has_video(vid)}

    def record_failures(
        self,
        failures: dict[str, dict[str, Any]],
        *,
        clear: list[str] | tuple[str, ...] = (),
        writer: str | None = None,
    ) -> None:
        """Merge new failures and drop ``clear`` ids (videos that now succeeded).

        ``writer=None``: the client's table (attrs of ``STORE/failures``). Concurrent writers
        (job-array shards) each pass their own name and only ever rewrite
        ``STORE/failures/<writer>``, so no file has two writers.
        """
        name = None if writer is None else node_name(writer)
        bookkeeping.update_failures(self.path, name, _json_safe(failures), list(clear))

    # ------------------------------------------------------------------ locking
    def acquire_lock(self, name: str = LOCK) -> None:
        """Refuse a second writer process on the same store (:func:`wsvad.locks.acquire`: a stale
        lock of a dead pid is taken over).

        Job-array shards pass their own ``name`` (one lock per shard): they write disjoint videos.
        The client (``name`` = ``.lock``) then converts a legacy store's bookkeeping.
        """
        lock = self.path / name
        try:
            locks.acquire(lock, self.path, "writing this store", group=True)
        except OSError as exc:  # read-only or full filesystem, no permission
            raise store_write_error(lock, exc) from exc
        if name == LOCK:
            try:
                bookkeeping.migrate(self.path)
            except OSError as exc:
                raise store_write_error(self.path, exc) from exc

    def release_lock(self, name: str = LOCK) -> None:
        locks.release(self.path / name)

    # ------------------------------------------------------------------ summary
    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def summary(self, expected: list[str] | None = None) -> dict[str, Any]:
        """Counts for ``wsvad info``: done / failed / pending (pending needs the expected id
        list)."""
        done = self.video_ids()
        failed = sorted(set(self.failures()) - set(done))
        expected_ids = expected if expected is not None else self._attrs.get("expected_videos")
        pending = (
            sorted(set(expected_ids) - set(done) - set(failed))
            if expected_ids is not None
            else None
        )
        return {
            "path": str(self.path),
            "done": len(done),
            "failed": len(failed),
            "pending": None if pending is None else len(pending),
            "feature_shape": [self.crops, *self.feature_shape],
            "dtype": self.dtype,
            "snippets": int(sum(self.array(v).shape[0] for v in done)),
            "disk_bytes": self.disk_bytes(),
        }


def _group_attrs(path: Path) -> dict[str, Any]:
    """The attrs of the zarr v3 group at ``path``, read from its ``zarr.json`` (the v3 spec keeps
    them under ``attributes``) without importing zarr."""
    meta = path / "zarr.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WsvadError(f"{path}: cannot open feature store: {meta}: {exc}") from exc
    if not isinstance(data, dict) or data.get("node_type") != "group":
        raise WsvadError(
            f"{path}: cannot open feature store: {meta} is not a zarr group's metadata"
        )
    if data.get("zarr_format") != 3:
        raise WsvadError(
            f"{path}: cannot open feature store: zarr format {data.get('zarr_format')!r} "
            "(wsvad stores are zarr v3)"
        )
    attrs = data.get("attributes", {})
    return attrs if isinstance(attrs, dict) else {}


def _describe_config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _describe_config_diff(a, b, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return "; ".join(diffs[:5])
