"""The torch networks behind the backbones, kept apart so that specs and ``wsvad backbones`` never
import torch."""
