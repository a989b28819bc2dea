"""Synthetic fixed-camera surveillance videos in the UCF-Crime layout (``wsvad synth``).

``generate_synthetic_dataset(out, seed, preset="demo")`` is the Python entry point; see
:mod:`wsvad.data.synth.config` for the parameters and presets and :mod:`wsvad.data.synth.events`
for the anomaly classes.
"""

from __future__ import annotations

from wsvad.data.synth.config import PRESETS, SynthConfig
from wsvad.data.synth.generate import SynthSummary, generate_synthetic_dataset, write_dataset

__all__ = ["PRESETS", "SynthConfig", "SynthSummary", "generate_synthetic_dataset", "write_dataset"]
