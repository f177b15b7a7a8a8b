"""Writes to the member pool. Each module is one concern; import from it directly."""
