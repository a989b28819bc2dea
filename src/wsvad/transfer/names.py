"""Video-level labels that the benchmarks' own naming conventions carry (used without
``--dataset``).

- XD-Violence: ``..._label_A`` is normal; ``..._label_B1-G-0`` lists up to three classes, ``0``
  pads.
- UCF-Crime: ``Normal_Videos...`` is normal; otherwise the letters before the number are the class
  (``Abuse028_x264`` -> Abuse).
- ShanghaiTech (weak split, Zhong et al.): anomalous clips have 4-digit ids (``01_0014``), normal
  ones 3-digit ids (``01_001``), in both splits (wsvad/data/benchmark_lists/SOURCES.md).
Frame-level ground truth is never in a name: without a dataset adapter, intervals stay unknown.
"""

from __future__ import annotations

import re

_XD = re.compile(r".+_label_(?P<labels>[A-Z0-9]+(?:-[A-Z0-9]+)*)")
_UCF_NORMAL = re.compile(r"Normal_Videos_?\d+_x264")
_UCF_ANOMALY = re.compile(r"(?P<cls>[A-Za-z]+?)\d+_x264")
_SH = re.compile(r"\d{2}_(?P<clip>\d{3,4})")


def label_from_name(video_id: str) -> tuple[int, tuple[str, ...]] | None:
    """``(label, classes)`` from a benchmark video name, ``None`` when the name says nothing.

    >>> label_from_name("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6")
    (1, ('G', 'B2', 'B6'))
    >>> label_from_name("A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A")
    (0, ())
    >>> label_from_name("Normal_Videos_003_x264"), label_from_name("Abuse028_x264")
    ((0, ()), (1, ('Abuse',)))
    >>> label_from_name("01_0014"), label_from_name("01_001"), label_from_name("clip7")
    ((1, ()), (0, ()), None)
    """
    m = _XD.fullmatch(video_id)
    if m is not None:
        classes = tuple(c for c in m.group("labels").split("-") if c != "0")
        return (0, ()) if classes == ("A",) else (1, classes)
    if _UCF_NORMAL.fullmatch(video_id):
        return 0, ()
    m = _UCF_ANOMALY.fullmatch(video_id)
    if m is not None:
        return 1, (m.group("cls"),)
    m = _SH.fullmatch(video_id)
    if m is not None:
        return (1 if len(m.group("clip")) == 4 else 0), ()
    return None
