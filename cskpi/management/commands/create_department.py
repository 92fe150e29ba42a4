from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cskpi.services import department_upsert


class Command(BaseCommand):
    help = "Create a department, or update its name/timezone/currency (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name")
        parser.add_argument("--timezone", help="IANA zone, default CSKPI_DEFAULT_TIMEZONE")
        parser.add_argument("--currency", help="ISO 4217 reporting currency, default VND")

    def handle(self, *args, slug, name, timezone, currency, **options):
        try:
            department = department_upsert(slug=slug, name=name, timezone=timezone, currency=currency)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"{department.slug} {department.name!r} {department.timezone} {department.currency}")
