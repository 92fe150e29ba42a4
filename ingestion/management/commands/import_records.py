"""Backfill records from a CSV or JSON Lines file through the same validator and upsert as the API."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cskpi.errors import InvalidInput
from ingestion.fields import RECORD_SPECS
from ingestion.services import record_batch_upsert, record_batch_validate


def _jsonl_items(handle) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError:
            yield number, _Unreadable(number)


def _csv_items(handle) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(handle)
    for item in reader:
        yield reader.line_num, item


class _Unreadable:
    """A line that is not JSON: the validator refuses it like any non-object item."""

    def __init__(self, number: int):
        self.number = number


class Command(BaseCommand):
    help = (f"Import {' | '.join(RECORD_SPECS)} from FILE.csv or FILE.jsonl with the API's validation and "
            "upsert rules (as staff). CSV columns and JSON keys are the record type's declared fields. Invalid "
            "batches are reported and not written; re-running a file changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("record_type", choices=sorted(RECORD_SPECS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--department", help="Department slug for rows that name none.")
        parser.add_argument("--stop-on-error", action="store_true", help="Stop at the first invalid batch.")

    def handle(self, *args, record_type: str, file: Path, batch_size: int, department: str | None,
               stop_on_error: bool, **options):
        spec = RECORD_SPECS[record_type]
        suffix = file.suffix.lower()
        if suffix not in (".csv", ".jsonl"):
            raise CommandError("FILE must end in .csv or .jsonl")
        if not file.is_file():
            raise CommandError(f"No file {file}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        text = suffix == ".csv"
        totals = {"created": 0, "updated": 0, "unchanged": 0, "stale": 0, "invalid": 0, "not_written": 0}
        invalid_lines: list[str] = []
        with file.open(encoding="utf-8-sig", newline="") as handle:
            lines = sum(1 for _ in handle) - (1 if text else 0)
            handle.seek(0)
            items = _csv_items(handle) if text else _jsonl_items(handle)
            with tqdm(total=max(lines, 0), unit="rec", desc=f"import {record_type}", file=self.stderr._out,
                      disable=options.get("verbosity", 1) == 0) as progress:
                batch: list[tuple[int, object]] = []
                for number, item in items:
                    if department and isinstance(item, dict) and not item.get("department"):
                        item["department"] = department
                    batch.append((number, item))
                    if len(batch) >= batch_size:
                        ok = self._import(spec, batch, text, totals, invalid_lines)
                        progress.update(len(batch))
                        batch = []
                        if not ok and stop_on_error:
                            break
                else:
                    if batch:
                        self._import(spec, batch, text, totals, invalid_lines)
                        progress.update(len(batch))
        self.stdout.write(
            "created={created} updated={updated} unchanged={unchanged} stale={stale} invalid={invalid} "
            "not_written={not_written}".format(**totals)
        )
        if invalid_lines:
            self.stdout.write("invalid rows (their batches were not written):")
            for line in invalid_lines:
                self.stdout.write(f"  {line}")
            raise CommandError(f"{totals['invalid']} invalid rows; {totals['not_written']} rows not written.")

    def _import(self, spec, batch, text, totals, invalid_lines) -> bool:
        numbers = [number for number, _ in batch]
        items = [item for _, item in batch]
        try:
            # Every error listed: the summary names the line of every invalid row.
            rows = record_batch_validate(spec=spec, items=items, text=text, error_limit=10**9)
        except InvalidInput as exc:
            bad = {}
            for error in exc.errors:
                bad.setdefault(error["index"], []).append(f"{error['field'] or 'row'}: {error['code']}")
            for index, problems in sorted(bad.items()):
                invalid_lines.append(f"line {numbers[index]}: " + ", ".join(problems))
            totals["invalid"] += len(bad)
            totals["not_written"] += len(batch)
            return False
        outcome = record_batch_upsert(spec=spec, rows=rows)
        for key in ("created", "updated", "unchanged", "stale"):
            totals[key] += outcome[key]
        return True
