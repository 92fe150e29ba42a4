"""Hooks ingestion offers the apps built on it (metrics), so that ingestion never imports them."""

from django.dispatch import Signal

# Sent by `ingestion.changes.record_changes_mark` inside the transaction that wrote the marks, with
# `record_type` and `count`. A receiver that acts on the marks defers with `transaction.on_commit`
# (they are not visible to other connections before the commit).
record_changes_marked = Signal()
