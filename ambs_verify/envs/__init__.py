"""Environments speaking gymnasium 1.x; cost comes as ``info["cost"]`` plus per-label flags (DESIGN.md §6)."""
