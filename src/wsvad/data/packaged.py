"""The official split lists and annotations shipped inside the package.

``wsvad/data/benchmark_lists/`` holds byte-exact copies of the UCF-Crime, ShanghaiTech (weak split,
with its 107 test frame masks) and XD-Violence list and annotation files, as their authors
published them; ``SOURCES.md`` there names the repository, commit and blob of every file, and
``SHA256SUMS`` their checksums. The adapters fall back on these copies when a file is not under
the dataset root, so ``wsvad check`` and ``wsvad import`` work for a user who has only the videos
or only the features. A copy is checked against ``SHA256SUMS`` before it is used: a damaged
install fails with the file's name instead of giving wrong labels.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from importlib.resources import files
from pathlib import Path

from wsvad.data.listfiles import find_file
from wsvad.errors import WsvadError

log = logging.getLogger(__name__)

# adapter name -> folder under benchmark_lists/
DATASET_FOLDERS = {"ucf": "ucf_crime", "shanghaitech": "shanghaitech", "xd": "xd_violence"}
SUMS = "SHA256SUMS"


def lists_dir() -> Path:
    """The folder of the packaged copies (a plain folder: the package is installed unzipped)."""
    return Path(str(files("wsvad.data") / "benchmark_lists"))


@cache
def expected_sums() -> dict[str, str]:
    """``{relative path: sha256}`` from ``SHA256SUMS`` (``sha256sum`` format)."""
    sums: dict[str, str] = {}
    for line in (lists_dir() / SUMS).read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            sums[rel.strip()] = digest.strip()
    return sums


@cache
def _verified(path: Path) -> Path:
    rel = path.relative_to(lists_dir()).as_posix()
    expected = expected_sums().get(rel)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected != actual:
        raise WsvadError(
            f"{path}: the packaged copy of {rel} does not match its sha256 in {SUMS} "
            f"({actual[:12]}… instead of {(expected or 'none')[:12]}…); reinstall wsvad"
        )
    return path


def verify_all() -> list[str]:
    """The relative paths whose bytes differ from ``SHA256SUMS`` (empty: the copy is intact)."""
    bad = []
    for rel, digest in expected_sums().items():
        path = lists_dir() / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(rel)
    return bad


def packaged_file(dataset: str, names: tuple[str, ...]) -> Path | None:
    """The packaged official file of ``dataset`` named one of ``names`` (the shallowest; earlier
    names win at the same depth), sha256-checked; ``None`` when none is shipped."""
    folder = DATASET_FOLDERS.get(dataset)
    if folder is None:
        return None
    found = find_file(lists_dir() / folder, names)
    return None if found is None else _verified(found)


def official_file(root: Path, dataset: str, names: tuple[str, ...]) -> Path | None:
    """The file under the dataset root, else the packaged official copy (logged), else ``None``."""
    found = find_file(root, names)
    if found is not None:
        return found
    packaged = packaged_file(dataset, names)
    if packaged is not None:
        log.info("%s: no %s under it; using the official copy shipped with wsvad", root, names[0])
    return packaged


def packaged_mask_dir() -> Path:
    """ShanghaiTech's per-frame test masks (RTFM ``list/test_frame_mask``), every file checked."""
    folder = lists_dir() / "shanghaitech" / "rtfm" / "test_frame_mask"
    for path in sorted(folder.glob("*.npy")):
        _verified(path)
    return folder
