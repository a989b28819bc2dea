"""wsvad: weakly-supervised video anomaly detection toolkit."""

__version__ = "0.1.0"
