"""JSON parser for the ingest endpoints (the project-wide one, see cskpi.parsers)."""

from cskpi.parsers import FastJSONParser

__all__ = ["FastJSONParser"]
