"""The evaluate stage's config (``wsvad evaluate``); defaults here, YAML under configs/evaluate/."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wsvad.config import Device
from wsvad.data.groundtruth import AlignmentRule
from wsvad.evaluate.authors import ProtocolName


class EvaluateConfig(BaseModel):
    """What to evaluate and under which protocol.

    Either ``run`` (a run directory of ``wsvad train``: scores, store, dataset and snippet geometry
    are read from it) or ``scores`` with ``dataset`` and ``root`` (standalone evaluation of scores
    from any model). ``snippet_len``/``stride`` left empty come from the run or the store, else 16.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: Path | None = None
    scores: Path | None = None
    dataset: str | None = None
    root: Path | None = None
    store: Path | None = None
    out: Path | None = None
    # wsvad: the default alignment below; authors: the benchmark's public code
    # (wsvad.evaluate.authors picks the alignment and names the figure the papers report)
    protocol: ProtocolName = "wsvad"
    alignment: AlignmentRule | None = None  # None: true-frames, or the authors' rule
    snippet_len: int | None = Field(None, ge=1)
    stride: int | None = Field(None, ge=1)
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    class_negatives: Literal["all_normal", "class_only"] = "all_normal"
    plots: bool = True
    report: bool = True  # report.html next to metrics.json (wsvad.evaluate.html_report)
    timelines: int = Field(3, ge=0)  # per group: best, worst, random sample
    sample_seed: int = 0
    frame_cache: Path | None = None  # frame-count probe cache; None = $XDG_CACHE_HOME/wsvad

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateConfig:
        # "Neither given" is checked by run_evaluate, so that a YAML holding only protocol keys
        # validates.
        if self.run is not None and self.scores is not None:
            raise ValueError("give either --run or --scores, not both")
        if self.scores is not None and (self.dataset is None or self.root is None):
            raise ValueError(
                "--scores needs --dataset and --root (the ground truth comes from the dataset)"
            )
        if self.scores is not None and self.out is None:
            raise ValueError("--scores needs --out (where metrics.json and the plots go)")
        return self


class ScoreConfig(BaseModel):
    """``wsvad score``: one new video through the run's extraction settings and detector, offline
    (``video``) or live, snippet by snippet (``stream``: a file, network URL or capture device)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # a video file, a folder of frames, or a stream URL (rtsp://, http://; read with PyAV)
    video: str | None = None
    run: Path  # run directory of `wsvad train`
    out: Path | None = None  # None: RUN/score/<video stem>/ offline; nothing written when streaming
    # frames scored >= threshold form the printed intervals
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    # score this source live, each snippet as soon as it arrives (wsvad.evaluate.stream)
    stream: str | None = None
    # stream: snippets of context (docs/streaming.md); 0 = all so far; None = the detector's
    window: int | None = Field(None, ge=0)
    hysteresis: float = Field(0.0, ge=0.0, le=1.0)  # stream: intervals close below threshold - h
    min_duration: float = Field(0.0, ge=0.0)  # stream: seconds before an interval is reported
    buffer: int = Field(2, ge=1)  # stream: snippets held between reader and scorer
    realtime: bool = False  # stream: play a file at its own frame rate (drops like a live source)
    timeout: float = Field(10.0, gt=0.0)  # stream: seconds without data that end a live source
    precision: Literal["fp32", "bf16"] | None = None  # stream: None = the store's
    device: Device = "cpu"  # cpu | cuda | cuda:N
    decoder: Literal["auto", "decord", "av"] = "auto"  # auto: decord, PyAV when decord fails
    crops: Literal[1, 5, 10] | None = None  # None: the crops of the run's store
    # video is a video id of the run's store: score its stored features (no decoding)
    from_store: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ScoreConfig:
        if self.video is not None and self.stream is not None:
            raise ValueError("give a VIDEO to score offline or --stream SOURCE, not both")
        if self.video is None and self.stream is None:
            raise ValueError("give a VIDEO to score offline or --stream SOURCE to score live")
        if self.from_store and self.stream is not None:
            raise ValueError("--from-store scores stored features, --stream decodes a source")
        return self
