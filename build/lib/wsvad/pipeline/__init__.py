"""Orchestration and the contracts between stages (store, bags, cluster); no torch here."""
