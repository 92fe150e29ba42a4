import hashlib
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone as django_timezone

from cskpi.calendars import CalendarVersion, calendar_parse, versions_load, wall_to_utc
from cskpi.choices import Role
from cskpi.errors import Conflict
from cskpi.models import ApiToken, Department, DepartmentCalendar, Grant, SlaPolicy
from cskpi.service_levels import sla_policy_load, sla_policy_parse
from cskpi.signals import department_service_levels_changed, department_timezone_changed

TOKEN_PREFIX = "csk_"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_issue(*, user, name: str = "") -> str:
    """Create a token for `user` and return it; only its digest is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, name=name, prefix=token[:10], digest=token_digest(token))
    return token


def department_create(*, slug: str, name: str, timezone: str | None = None,
                      currency: str | None = None) -> Department:
    """Create a department; 409 if the slug is taken (the unique constraint decides, races included)."""
    given = {k: v for k, v in (("timezone", timezone), ("currency", currency)) if v}
    try:
        with transaction.atomic():
            return Department.objects.create(slug=slug, name=name, **given)
    except IntegrityError as exc:
        raise Conflict("A department with this slug exists.", errors=[
            {"field": "slug", "code": "unique", "message": "A department with this slug exists."}
        ]) from exc


@transaction.atomic
def department_upsert(*, slug: str, name: str | None = None, timezone: str | None = None,
                      currency: str | None = None) -> Department:
    """Create the department, or update the name/timezone/currency given; idempotent."""
    given = {k: v for k, v in (("timezone", timezone), ("currency", currency)) if v}
    department, created = Department.objects.get_or_create(slug=slug, defaults={"name": name or slug, **given})
    if created:
        department.full_clean()
        return department
    changed = []
    if name is not None and department.name != name:
        department.name = name
        changed.append("name")
    if timezone is not None and department.timezone != timezone:
        department.timezone = timezone
        changed.append("timezone")
    if currency is not None and department.currency != currency:
        # Stored amounts are not converted: a record in the old currency stays as it was sent.
        department.currency = currency
        changed.append("currency")
    if changed:
        department.full_clean()
        department.save(update_fields=changed)
        if "timezone" in changed:
            # Day buckets are cut in the department's zone: their keeper rebuilds them in the new one.
            department_timezone_changed.send(sender=Department, department=department)
    return department


@transaction.atomic
def user_grants_upsert(
    *, username: str, staff: bool = False, grants: list[tuple[str, str]] = (), agent: str = ""
):
    """Create or update a user with the given (department slug, role) grants, added to any held."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    if staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    for slug, role in grants:
        department = Department.objects.get(slug=slug)
        if role == Role.AGENT and not agent:
            raise ValueError(f"the agent grant on {slug} needs --agent AGENT_ID")
        Grant.objects.update_or_create(
            user=user, department=department, role=role,
            defaults={"agent": agent if role == Role.AGENT else ""},
        )
    return user


# --- business hours and SLA policies -----------------------------------------------------------
# First key of the PostgreSQL advisory lock on a department's calendar and policy (the second key
# is the department id): a write holds it exclusively, a batch measuring records with them holds
# it shared (ingestion.service_levels), so no record is measured with a calendar being replaced.
SERVICE_LEVELS_LOCK = 7_310


def service_levels_lock(*, department_ids, shared: bool) -> None:
    """Take the calendar/policy lock of these departments until the transaction ends (SQLite:
    writes are serialised already)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    ids = sorted(set(department_ids))
    with connection.cursor() as cursor:  # one round trip; in id order, so writers cannot deadlock
        cursor.execute(f"SELECT count({function}(%s, d)) FROM (SELECT unnest(%s::int[]) AS d ORDER BY 1) s",
                       [SERVICE_LEVELS_LOCK, ids])


def _changed_since(old: list[CalendarVersion], new: list[CalendarVersion], zone: ZoneInfo) -> datetime | None | bool:
    """The instant from which records measure differently (the earliest version that differs takes
    effect); False when nothing changed. Records before it keep their numbers."""
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a != b:
            day = min(v.effective_from for v in (a, b) if v is not None)
            return wall_to_utc(datetime.combine(day, datetime.min.time()), zone)
    return False


@transaction.atomic
def department_calendar_put(*, department: Department, body) -> DepartmentCalendar:
    """Replace the department's calendar with the body's versions; 400 naming the bad field, nothing
    changed. The records from the earliest changed version on are measured again in the background."""
    versions = calendar_parse(body)
    service_levels_lock(department_ids=[department.id], shared=False)
    stored = DepartmentCalendar.objects.select_for_update().filter(department=department).first()
    old = versions_load(stored.versions) if stored else []
    since = _changed_since(old, versions, ZoneInfo(department.timezone))
    if stored is None:
        stored = DepartmentCalendar(department=department)
    stored.versions = [v.as_json() for v in versions]
    stored.revision = secrets.randbits(62)
    stored.updated_at = django_timezone.now()
    stored.save()
    if since is not False:
        department_service_levels_changed.send(sender=DepartmentCalendar, department=department, since=since)
    return stored


@transaction.atomic
def department_sla_put(*, department: Department, body) -> SlaPolicy:
    """Replace the department's SLA policy; 400 naming the bad field, nothing changed. A policy is
    not versioned: every record of the department is measured against it again, in the background."""
    policy = sla_policy_parse(body)
    service_levels_lock(department_ids=[department.id], shared=False)
    stored = SlaPolicy.objects.select_for_update().filter(department=department).first()
    changed = stored is None or sla_policy_load(stored.body) != policy
    if stored is None:
        stored = SlaPolicy(department=department)
    stored.body = policy.as_json()
    stored.revision = secrets.randbits(62)
    stored.updated_at = django_timezone.now()
    stored.save()
    if changed:
        department_service_levels_changed.send(sender=SlaPolicy, department=department, since=None)
    return stored

