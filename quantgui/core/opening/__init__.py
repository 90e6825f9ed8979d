"""opening: see docs/architecture.md."""
