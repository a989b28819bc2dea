"""One scoring path: a video's stored (or freshly extracted) features -> the run's snippet scores.

``recipe`` (numpy + pydantic, no torch) says how a run's detector saw its inputs (crop handling,
bag rule/count/pooling, ``score_on``, a store that already holds segments) and prepares features
that way; the train stage uses the same preparation for its training inputs. ``score`` (torch) is
the one function that scores a video, :func:`wsvad.scoring.score.score_features`, and loads a run's
detector with its recipe (:func:`wsvad.scoring.score.load_scoring_model`). Train (test scores,
``scores.npz``), evaluate (mAA's class predictions), ``wsvad score`` and streaming all call it, so
the numbers cannot drift apart. Nothing is imported here: ``recipe`` is imported by train's config,
which must not pull torch.
"""
