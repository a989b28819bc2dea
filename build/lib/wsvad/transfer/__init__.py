"""Import and export of published feature sets (RTFM, per-crop XD/UR-DMU, Sultani C3D,
video_features, XD VGGish audio). No torch here: an import runs where only numpy and zarr are
installed."""

from wsvad.transfer.config import ConcatConfig, ExportConfig, ImportConfig, ListFile
from wsvad.transfer.export_features import ExportResult, run_export
from wsvad.transfer.formats import get_format, list_formats
from wsvad.transfer.import_features import ImportResult, run_import
from wsvad.transfer.modalities import concat_modalities, concat_stores, pair_stores, run_concat

__all__ = [
    "ConcatConfig",
    "ExportConfig",
    "ExportResult",
    "ImportConfig",
    "ImportResult",
    "ListFile",
    "concat_modalities",
    "concat_stores",
    "get_format",
    "list_formats",
    "pair_stores",
    "run_concat",
    "run_export",
    "run_import",
]
