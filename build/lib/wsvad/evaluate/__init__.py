"""The evaluate stage: frame-level metrics under a stated protocol, reports, plots, and scoring a
new video (``run.run_evaluate``, ``score_video.score_video``). Modules import
sklearn/matplotlib/torch, so nothing is imported here."""
