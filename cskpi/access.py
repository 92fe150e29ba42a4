"""What a caller may do, per department. Built once per request from the caller's grants."""

from dataclasses import dataclass, field

from cskpi.choices import ROLE_READ_LEVEL, ReadLevel, Role
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
    if user.is_staff or user.is_superuser:
        return Access(
            is_staff=True,
            by_slug={
                d.slug: DepartmentAccess(department=d, read_level=ReadLevel.FULL, can_ingest=True, agent=None)
                for d in Department.objects.all()
            },
        )
    grants = Grant.objects.filter(user=user).select_related("department")
    return access_from_grants([(g.department, g.role, g.agent) for g in grants])


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
