"""What a caller may do, per department. Built once per request from the caller's grants."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cskpi.choices import ROLE_READ_LEVEL, ReadLevel, Role
from cskpi.errors import Forbidden, InvalidInput, NotFoundError, text_clip
from cskpi.models import Department, Grant


@dataclass(frozen=True)
class DepartmentAccess:
    department: Department
    read_level: ReadLevel
    can_ingest: bool
    agent: str | None  # the agent the caller is linked to, when read_level is AGENT

    @property
    def can_read(self) -> bool:
        return self.read_level > ReadLevel.NONE

    @property
    def sees_amounts(self) -> bool:
        return self.read_level >= ReadLevel.FULL


@dataclass(frozen=True)
class Access:
    is_staff: bool
    by_slug: dict[str, DepartmentAccess] = field(default_factory=dict)

    def get(self, slug: str) -> DepartmentAccess | None:
        return self.by_slug.get(slug)

    def readable(self) -> list[DepartmentAccess]:
        return [a for a in self.by_slug.values() if a.can_read]

    def ingestable(self) -> list[DepartmentAccess]:
        return [a for a in self.by_slug.values() if a.can_ingest]

    def readable_department_ids(self) -> list[int]:
        return [a.department.id for a in self.readable()]


def access_get(*, user) -> Access:
    if user is None or not user.is_authenticated:
        return Access(is_staff=False)
    if user_is_staff(user):
        return access_for_staff(Department.objects.all())
    grants = Grant.objects.filter(user=user).select_related("department")
    return access_from_grants([(g.department, g.role, g.agent) for g in grants])


def user_is_staff(user) -> bool:
    """Staff (and superusers) read and ingest every department, whatever their grants say."""
    return user.is_staff or user.is_superuser


def access_for_staff(departments: Iterable[Department]) -> Access:
    """Staff read and ingest every department."""
    return Access(is_staff=True, by_slug={
        d.slug: DepartmentAccess(department=d, read_level=ReadLevel.FULL, can_ingest=True, agent=None)
        for d in departments
    })


def access_from_grants(grants: list[tuple[Department, str, str]]) -> Access:
    """A non-staff caller's access from their grants: (department, role, agent) each."""
    held: dict[str, dict] = {}
    for department, role, agent in grants:
        entry = held.setdefault(
            department.slug,
            {"department": department, "read_level": ReadLevel.NONE, "can_ingest": False, "agent": None},
        )
        if role == Role.INGEST:
            entry["can_ingest"] = True
        level = ROLE_READ_LEVEL[Role(role)]
        if level > entry["read_level"]:
            entry["read_level"] = level
        if role == Role.AGENT:
            entry["agent"] = agent
    return Access(
        is_staff=False,
        by_slug={
            slug: DepartmentAccess(**{**e, "agent": e["agent"] if e["read_level"] == ReadLevel.AGENT else None})
            for slug, e in held.items()
        },
    )


def request_access(request) -> Access:
    """The caller's access, computed once per request."""
    access = getattr(request, "_cskpi_access", None)
    if access is None:
        access = access_get(user=request.user)
        request._cskpi_access = access
    return access


# --- the read-scope policy: one answer per situation, for every endpoint -----------------------
# docs/access.md tabulates it. Department slugs are not enumerable: a caller who is not staff gets
# the same 403 for a department that does not exist as for one it may not read; staff (who read
# every department) are told plainly that it does not exist.

NO_READ_GRANT = "no_read_grant"
PERMISSION_DENIED = "permission_denied"
UNKNOWN_DEPARTMENT = "unknown_department"
NOT_PERMITTED = "not_permitted"


def read_scopes_resolve(*, access: Access, slugs: Sequence[str] = ()) -> list[DepartmentAccess]:
    """The departments a read covers: those named, or every one the caller reads when none is named.

    403 `no_read_grant` when the caller reads no department; 403 `permission_denied` naming each
    department it may not read (or that does not exist); staff: 400 `unknown_department`.
    """
    if not slugs:
        readable = sorted(access.readable(), key=lambda a: a.department.slug)
        if not readable:
            raise Forbidden("You hold no grant to read any department.", [
                {"field": "department", "code": NO_READ_GRANT,
                 "message": "Your token has no viewer, agent or manager grant on any department."}
            ], code=NO_READ_GRANT)
        return readable
    slugs = list(dict.fromkeys(slugs))
    hidden = [slug for slug in slugs if (a := access.get(slug)) is None or not a.can_read]
    if hidden:
        listed = ", ".join(text_clip(s) for s in hidden)
        if access.is_staff:
            raise InvalidInput(f"No department {listed}.", [
                {"field": "department", "code": UNKNOWN_DEPARTMENT, "message": f"No department {text_clip(s)!r}."}
                for s in hidden
            ])
        raise Forbidden(f"You may not read department {listed}.", [
            {"field": "department", "code": PERMISSION_DENIED,
             "message": f"No read grant on department {text_clip(s)!r} (or no such department)."}
            for s in hidden
        ])
    return [access.get(slug) for slug in slugs]


def agent_detail_check(*, scopes: Sequence[DepartmentAccess], group_by_agent: bool = False,
                       agents: Sequence[str] = ()) -> None:
    """Per-agent detail: viewers see none (no grouping or filtering by agent); agents only their own.

    403 `not_permitted` naming the parameter (`group_by` or `agent`) and the department.
    """
    for scope in scopes:
        slug = scope.department.slug
        if scope.read_level == ReadLevel.DEPARTMENT:
            for asked, field in ((group_by_agent, "group_by"), (bool(agents), "agent")):
                if asked:
                    what = "group by agent" if field == "group_by" else "filter by agent"
                    message = f"Your role on '{slug}' shows department-level figures only; it cannot {what}."
                    raise Forbidden(message, [{"field": field, "code": NOT_PERMITTED, "message": message}],
                                    code=NOT_PERMITTED)
        elif scope.read_level == ReadLevel.AGENT and agents and set(agents) != {scope.agent}:
            message = f"Your role on '{slug}' shows only your own agent ({scope.agent})."
            raise Forbidden(message, [{"field": "agent", "code": NOT_PERMITTED, "message": message}],
                            code=NOT_PERMITTED)


class PresenceView:
    """How much of a department's "who is online now" a caller sees."""

    LIST = "list"  # every agent's status (managers, staff)
    COUNTS = "counts"  # the counts per status only (viewers: no per-agent breakdown)
    SELF = "self"  # the caller's own agent only, counts included (agents)


def presence_view(*, scope: DepartmentAccess) -> str:
    """What `GET /agents/now` shows of one readable department (the same split as KPIs by agent)."""
    if scope.read_level == ReadLevel.DEPARTMENT:
        return PresenceView.COUNTS
    if scope.read_level == ReadLevel.AGENT:
        return PresenceView.SELF
    return PresenceView.LIST


def read_level_check(*, scopes: Sequence[DepartmentAccess], needed: dict[str, ReadLevel], field: str) -> None:
    """Values of a parameter that need a read level (an MRR KPI needs what the `mrr` of the records
    needs: managers and staff): 403 `not_permitted` naming the parameter, the value and the department."""
    for scope in scopes:
        for value, level in needed.items():
            if scope.read_level < level:
                message = (f"Your role on '{scope.department.slug}' cannot read {value}: it needs a "
                           f"{'manager grant or staff' if level == ReadLevel.FULL else 'higher role'}.")
                raise Forbidden(message, [{"field": field, "code": NOT_PERMITTED, "message": message}],
                                code=NOT_PERMITTED)


def ingest_permission_check(*, access: Access) -> None:
    """May this token ingest at all? Checked before the body is read (403 `permission_denied`)."""
    if not access.is_staff and not access.ingestable():
        raise Forbidden("Your token holds no ingest grant; nothing was read or written.", [
            {"field": None, "code": PERMISSION_DENIED, "message": "Ingesting needs the ingest role on a department."}
        ])


def ingest_departments_check(*, access: Access, departments: Sequence) -> None:
    """Each item's department (raw, before validation) must be one the caller ingests into.

    A caller who is not staff gets the same 403 for a department that does not exist as for one
    without its ingest grant; staff are left to validation (400 `unknown_department`). Values that
    are not text are left to validation too.
    """
    if access.is_staff:
        return
    allowed = {a.department.slug for a in access.ingestable()}
    bad = [(i, d) for i, d in enumerate(departments) if type(d) is str and d not in allowed]
    if bad:
        names = sorted({text_clip(d) for _, d in bad})
        raise Forbidden(
            f"You may not ingest into: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}. "
            "Nothing was written.",
            [{"index": i, "field": "department", "code": PERMISSION_DENIED,
              "message": f"No ingest grant on department {text_clip(d)!r} (or no such department)."}
             for i, d in bad],
        )


def department_setting_scope(*, access: Access, slug: str, what: str, write: bool = False) -> DepartmentAccess:
    """A department's setting (`what`, e.g. "calendar", named in the path): read by its readers,
    changed by its managers and staff.

    A department the caller may not read, or that does not exist, is refused as by
    `read_scopes_resolve` (403, slugs not enumerable), except that staff get 404 for a path naming
    no department; a reader below manager who writes gets 403 `permission_denied`.
    """
    if access.is_staff and access.get(slug) is None:
        raise NotFoundError(f"No department {text_clip(slug)!r}.")
    (scope,) = read_scopes_resolve(access=access, slugs=[slug])
    if write and not access.is_staff and scope.read_level < ReadLevel.FULL:
        message = f"Only a manager of '{slug}' or staff may change its {what}."
        raise Forbidden(message, [{"field": "department", "code": PERMISSION_DENIED, "message": message}])
    return scope
