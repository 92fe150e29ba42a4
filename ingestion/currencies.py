"""The ISO 4217 codes live in cskpi (departments have a reporting currency); re-exported for ingestion."""

from cskpi.currencies import ISO_4217_CHOICES, ISO_4217_CODES

__all__ = ["ISO_4217_CHOICES", "ISO_4217_CODES"]
