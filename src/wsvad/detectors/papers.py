"""Each detector's paper by its short name (docs/papers.md has the full citations): what
``wsvad detectors`` prints. A test keeps this table and docs/papers.md's in step."""

from __future__ import annotations

PAPERS: dict[str, str] = {
    "mil": "Sultani et al., CVPR 2018",
    "joint": "Majhi et al., FG 2021",
    "dam": "Majhi et al., AVSS 2021",
    "salient": "Watanabe et al., ICIP 2022",
    "claws": "Zaheer et al., ECCV 2020",
    "sta": "Liu et al., ICASSP 2022",
    "rtfm": "Tian et al., ICCV 2021",
}
