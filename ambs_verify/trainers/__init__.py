"""The training loop: env driver, persisted replay, checkpoints, metric logging, progress (DESIGN.md §2)."""
