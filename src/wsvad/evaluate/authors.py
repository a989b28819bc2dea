"""``--protocol authors``: per benchmark, the alignment and headline figure of its public code.

Papers on UCF-Crime, ShanghaiTech and XD-Violence report figures computed by a few public scripts,
not by wsvad's default protocol (``true-frames``). Each entry names the script it reproduces; the
golden figures in ``tests/evaluate/data/authors_golden.json`` were made by running those scripts
unmodified on seeded scores with the real lists (``tools/authors_golden.py``), and the tests check
that ``wsvad evaluate --protocol authors`` gives the same numbers.

* UCF-Crime, RTFM (tianyu0207/RTFM @ cf938f4) ``test_10crop.py`` with the ``gt-ucf.npy`` of
  ``list/make_gt_ucf.py``: scores repeated 16 times; ground truth drawn on ``T x 16`` frames from
  the annotation, end frame included (wsvad's half-open intervals already include it), frames past
  the video normal: alignment ``rtfm-ucf``. Papers report the ROC AUC.
* ShanghaiTech, RTFM ``test_10crop.py`` with ``list/gt-sh.npy`` (``list/make_gt_sh.py``): the frame
  mask padded with its last label to ``T x 16`` frames: alignment ``rtfm``. ROC AUC.
* XD-Violence, XDVioDet (Roc-Ng/XDVioDet @ f846d8c) ``list/make_gt.py`` + ``test.py``: ground
  truth of the true frames cut to ``16 x floor((frames - 1) / 16)`` = ``T x 16`` for the authors'
  features, scores repeated 16 times: alignment ``rtfm``. Papers report "AP" =
  ``sklearn.metrics.auc(recall, precision)``, wsvad's ``pr_auc_trapezoid`` (not ``ap_sklearn``).

Under these rules the true frame count never changes a figure (only ``T`` does), so a test video
without a counted frame count is evaluated on ``T x 16`` frames and counted as an estimate.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from wsvad.data.groundtruth import AlignmentRule
from wsvad.errors import WsvadError

ProtocolName = Literal["wsvad", "authors"]
AUTHORS_STRIDE = 16  # every script above repeats each snippet score 16 times


class AuthorsProtocol(NamedTuple):
    alignment: AlignmentRule
    figure: str  # the metrics.json key of the figure the papers report
    code: str  # the public code whose figures this reproduces


AUTHORS: dict[str, AuthorsProtocol] = {
    "ucf": AuthorsProtocol(
        "rtfm-ucf",
        "auc",
        "RTFM (tianyu0207/RTFM) test_10crop.py with list/make_gt_ucf.py's gt-ucf.npy",
    ),
    "shanghaitech": AuthorsProtocol(
        "rtfm",
        "auc",
        "RTFM (tianyu0207/RTFM) test_10crop.py with list/gt-sh.npy (list/make_gt_sh.py)",
    ),
    "xd": AuthorsProtocol(
        "rtfm",
        "pr_auc_trapezoid",
        "XDVioDet (Roc-Ng/XDVioDet) list/make_gt.py + test.py; AP = auc(recall, precision)",
    ),
}


def authors_protocol(dataset: str | None, alignment: str | None, stride: int) -> AuthorsProtocol:
    """The authors' protocol of ``dataset``; an error when there is none, when ``alignment`` asks
    for another rule, or when the scores are not at the authors' stride of 16 frames."""
    entry = AUTHORS.get(dataset or "")
    if entry is None:
        raise WsvadError(
            f"--protocol authors: no published evaluation code is known for dataset "
            f"{dataset!r}; it is defined for {', '.join(AUTHORS)}"
        )
    if alignment is not None and alignment != entry.alignment:
        raise WsvadError(
            f"--protocol authors fixes the alignment of {dataset} to {entry.alignment} "
            f"({entry.code}); drop --alignment {alignment}"
        )
    if stride != AUTHORS_STRIDE:
        raise WsvadError(
            f"--protocol authors: the authors' code repeats each score {AUTHORS_STRIDE} times, "
            f"but these scores are {stride} frames apart"
        )
    return entry
