"""Time ``wsvad import`` / ``wsvad export`` on RTFM-shaped files ([T, 10, 2048] float32).

The published UCF-Crime RTFM set is ~1900 such files, tens of GB; this writes a few in a temporary
folder and reports MB/s, so the full set's time can be estimated. Random values compress like real
features do (barely). Run:
``python benchmarks/transfer.py [--videos 8] [--snippets 256] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from wsvad.transfer import ExportConfig, ImportConfig, ListFile, run_export, run_import


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--snippets", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        feats = root / "feats"
        feats.mkdir()
        rng = np.random.default_rng(0)
        lines = []
        for i in range(args.videos):
            name = f"Abuse{i:03d}_x264_i3d.npy" if i % 2 else f"Normal_Videos_{i:03d}_x264_i3d.npy"
            np.save(feats / name, rng.standard_normal((args.snippets, 10, 2048), dtype=np.float32))
            lines.append(f"G:\\UCF_Test_ten_crop_i3d\\{name}")
        (root / "ucf-i3d-test.list").write_text("\r\n".join(lines) + "\r\n")
        mb = sum(p.stat().st_size for p in feats.iterdir()) / 1e6
        print(f"{args.videos} files, {mb:.0f} MB, workers {args.workers}")

        start = time.perf_counter()
        for path in feats.iterdir():
            hashlib.sha256(path.read_bytes()).hexdigest()
        took = time.perf_counter() - start
        print(f"sha256 alone:            {took:6.2f} s  {mb / took:7.0f} MB/s")
        for checksum in ("stat", "sha256"):
            cfg = ImportConfig(
                format="rtfm",
                features_root=feats,
                out=root / f"store-{checksum}",
                checksum=checksum,
                workers=args.workers,
                lists=[ListFile(path=root / "ucf-i3d-test.list")],
            )
            start = time.perf_counter()
            result = run_import(cfg)
            took = time.perf_counter() - start
            assert len(result.imported) == args.videos, result.failed
            print(f"import, checksum {checksum:6s}: {took:6.2f} s  {mb / took:7.0f} MB/s")
        start = time.perf_counter()
        run_export(ExportConfig(store=root / "store-stat", format="rtfm", out=root / "exported"))
        took = time.perf_counter() - start
        print(f"export rtfm:             {took:6.2f} s  {mb / took:7.0f} MB/s")


if __name__ == "__main__":
    main()
