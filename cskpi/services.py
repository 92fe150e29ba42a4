import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from cskpi.choices import Role
from cskpi.errors import Conflict
from cskpi.models import ApiToken, Department, Grant
from cskpi.signals import department_timezone_changed

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
