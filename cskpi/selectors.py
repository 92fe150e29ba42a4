from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from cskpi.access import Access, user_is_staff
from cskpi.db import hot_rows
from cskpi.models import ApiToken, Department, DepartmentCalendar, Grant, SlaPolicy
from cskpi.service_levels import SlaPolicyBody
from cskpi.signals import health_collected


def department_list(*, access: Access) -> list[Department]:
    """The departments the caller holds any grant on (all of them for staff)."""
    return sorted((a.department for a in access.by_slug.values()), key=lambda d: d.slug)


def health_get() -> dict:
    """Reachability of the database and the broker, and what the apps report (the recompute backlog)."""
    result = {"database": "ok", "broker": "in-process", "pending_buckets": None}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is "down" for a health check
        result["database"] = f"error: {type(exc).__name__}"
    if settings.REDIS_URL:
        result["broker"] = _redis_ping(settings.REDIS_URL)
    if result["database"] == "ok":
        try:
            for _, figures in health_collected.send(sender=None):
                result.update(figures)
        except Exception as exc:  # noqa: BLE001
            result["database"] = f"error: {type(exc).__name__}"
    result["status"] = "ok" if result["database"] == "ok" and result["broker"] in ("ok", "in-process") else "degraded"
    return result


def _redis_ping(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"


# --- the caller: token, user and grants -----------------------------------------------------


@dataclass(frozen=True)
class Principal:
    token: ApiToken  # .user is set
    grants: list[tuple[Department, str, str]]  # (department, role, agent) of each of the user's grants
    departments: list[Department]  # staff: every department, by slug (their grants do not matter)


def principal_get(*, digest: str) -> Principal | None:
    """The live (unrevoked) token with this digest, its user and the user's grants (for staff: every
    department instead), in one query.

    Why not the ORM: this runs on every request, where the ORM needs two queries (token with
    user, then the grants or the departments) and compiling each costs about a millisecond. The SQL
    text is built once from the models' metadata and the rows go through the ORM's converters.
    Nothing is kept across requests: a revoked token or a removed grant counts from the next request on.
    """
    plan = _principal_plan()
    # Prepared once per connection (its planning cost twice its run). Binary results: psycopg loads the
    # timestamps in C (Django's own loader parses their text in Python: a staff caller's row per
    # department made that most of the query's time).
    rows = hot_rows(connection, plan.sql, [digest], binary=True)
    if not rows:
        return None
    db = connection.alias
    values = [plan.convert(row) for row in rows]
    token_end, user_end = len(plan.token_names), len(plan.token_names) + len(plan.user_names)
    token = ApiToken.from_db(db, plan.token_names, values[0][:token_end])
    token.user = get_user_model().from_db(db, plan.user_names, values[0][token_end:user_end])
    held = [row for row in values if row[user_end + 2] is not None]  # LEFT JOIN: none gives one NULL row
    departments = [Department.from_db(db, plan.department_names, row[user_end + 2:]) for row in held]
    if user_is_staff(token.user):
        return Principal(token=token, grants=[], departments=departments)
    grants = [(department, row[user_end], row[user_end + 1]) for department, row in zip(departments, held, strict=True)]
    return Principal(token=token, grants=grants, departments=[])


@dataclass(frozen=True)
class _Plan:
    sql: str
    token_names: list[str]
    user_names: list[str]
    department_names: list[str]
    converters: list[tuple]  # (position, column expression, [converter, ...]) of the columns that have any

    def convert(self, row) -> list:
        out = list(row)
        for i, expression, converters in self.converters:
            for convert in converters:
                out[i] = convert(out[i], expression, connection)
        return out


@lru_cache(maxsize=1)
def _principal_plan() -> _Plan:
    user_model = get_user_model()
    token_fields = ApiToken._meta.concrete_fields
    user_fields = user_model._meta.concrete_fields
    grant_fields = [Grant._meta.get_field("role"), Grant._meta.get_field("agent")]
    department_fields = Department._meta.concrete_fields
    quote = connection.ops.quote_name
    tables = {ApiToken: "t", user_model: "u", Grant: "g", Department: "d"}

    def column(field) -> str:
        return f"{tables[field.model]}.{quote(field.column)}"

    def table(model) -> str:
        return f"{quote(model._meta.db_table)} {tables[model]}"

    selected = [*token_fields, *user_fields, *grant_fields, *department_fields]
    staff = f"(u.{quote('is_staff')} OR u.{quote('is_superuser')})"  # cskpi.access.user_is_staff in SQL
    sql = (
        f"SELECT {', '.join(column(f) for f in selected)} FROM {table(ApiToken)}"
        f" JOIN {table(user_model)} ON u.{quote(user_model._meta.pk.column)} = t.{quote('user_id')}"
        # Staff read every department: the departments instead of the grants (no second query).
        f" LEFT JOIN {table(Grant)} ON g.{quote('user_id')} = u.{quote(user_model._meta.pk.column)} AND NOT {staff}"
        f" LEFT JOIN {table(Department)} ON d.{quote('id')} = g.{quote('department_id')} OR {staff}"
        f" WHERE t.{quote('digest')} = %s AND t.{quote('revoked_at')} IS NULL"
        f" ORDER BY g.{quote('id')}, d.{quote('slug')}"
    )
    converters = []
    for i, field in enumerate(selected):
        expression = field.get_col(field.model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((i, expression, found))
    return _Plan(sql=sql, token_names=[f.attname for f in token_fields], user_names=[f.attname for f in user_fields],
                 department_names=[f.attname for f in department_fields], converters=converters)


def department_calendar_get(*, department: Department) -> dict:
    """The department's calendar as set (no versions and `updated_at` null: open 24/7)."""
    stored = DepartmentCalendar.objects.filter(department=department).first()
    if stored is None:
        return {"versions": [], "updated_at": None}
    return {"versions": stored.versions, "updated_at": stored.updated_at}


def department_sla_get(*, department: Department) -> dict:
    """The department's SLA policy (every target null and `updated_at` null: no policy)."""
    stored = SlaPolicy.objects.filter(department=department).first()
    if stored is None:
        return {**SlaPolicyBody().as_json(), "updated_at": None}
    return {**stored.body, "updated_at": stored.updated_at}
