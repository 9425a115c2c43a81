"""Certificates, their schema and hashing, verification, and HTML/Markdown reports (DESIGN.md §5)."""
