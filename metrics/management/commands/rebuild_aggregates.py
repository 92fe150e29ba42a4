"""Rebuild the KPI cubes from the raw records: all departments, or one, from a moment on."""

import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cskpi.models import Department
from metrics.management.commands.cluster_aggregates import cluster_reported
from metrics.services import department_chunks, department_cubes_rebuild


class Command(BaseCommand):
    help = "Delete and rebuild the aggregate cubes from raw records (per department and chunk of days)."

    def add_arguments(self, parser):
        parser.add_argument("--department", help="Department slug (default: every department).")
        parser.add_argument("--since", help="ISO date or datetime with offset: rebuild buckets from here on.")
        parser.add_argument("--chunk-days", type=int, default=7, help="Days per transaction (default 7).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument("--no-cluster", action="store_true",
                            help="After a full rebuild, skip rewriting the cube tables in key order (PostgreSQL "
                                 "CLUSTER, an exclusive lock per table while it runs; see cluster_aggregates).")

    def handle(self, *args, department=None, since=None, chunk_days=7, no_progress=False, no_cluster=False,
               **options):
        departments = Department.objects.all()
        if department:
            departments = departments.filter(slug=department)
            if not departments:
                raise CommandError(f"No department '{department}'.")
        since_at = _parse_since(since) if since else None
        total = sum(len(department_chunks(department=d, since=since_at, chunk_days=chunk_days)) for d in departments)
        with tqdm(total=total, unit="chunk", disable=no_progress, file=sys.stderr) as bar:
            for d in departments:
                bar.set_description(d.slug)
                department_cubes_rebuild(department=d, since=since_at, chunk_days=chunk_days, progress=bar.update)
        self.stdout.write(f"rebuilt {len(departments)} department(s), {total} chunk(s)")
        if not (department or since or no_cluster):
            # A full rebuild wrote its rows chunk by chunk, every cube interleaved: in key order a read
            # touches a few pages instead of one per row.
            cluster_reported(self)


def _parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError("--since takes an ISO date or a datetime with offset.") from None
    if moment.tzinfo is None and "T" in text:
        raise CommandError("--since needs an offset, e.g. 2026-05-01T00:00:00+07:00.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a bare date: its UTC midnight (buckets are widened anyway)
    return moment
