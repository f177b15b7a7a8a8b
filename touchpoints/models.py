"""Channels, touchpoints, events and import jobs arrive with the touchpoints issue."""
