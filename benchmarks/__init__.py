"""Timed measurements with JSON output; never part of the test suite's pass/fail (DESIGN.md §7)."""
