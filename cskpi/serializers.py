from django.core.validators import RegexValidator
from rest_framework import serializers

from cskpi.choices import ReadLevel
from cskpi.validators import zone_names


class _StrictString:
    """DRF's string fields turn 12 into "12"; the schema says string, so a number is refused."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StrictString, serializers.CharField):
    pass


class StrictSlugField(_StrictString, serializers.SlugField):
    pass


class DepartmentInputSerializer(serializers.Serializer):
    slug = StrictSlugField(max_length=64)
    name = StrictCharField(
        # Something besides whitespace, and no NUL (PostgreSQL cannot store it): one pattern, so the
        # schema documents it (DRF would refuse a NUL anyway, undocumented).
        max_length=200, trim_whitespace=False,
        validators=[RegexValidator(r"^[^\x00]*[^\s\x00][^\x00]*$", message="Must not be blank or hold NUL characters.")],
    )
    timezone = serializers.ChoiceField(
        choices=sorted(zone_names()), required=False, help_text="IANA zone, e.g. Asia/Ho_Chi_Minh.",
        error_messages={"invalid_choice": "'{input}' is not an IANA time zone."},
    )



READ_LEVEL_ROLE = {ReadLevel.AGENT: "agent", ReadLevel.DEPARTMENT: "viewer", ReadLevel.FULL: "manager"}


class DepartmentOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    timezone = serializers.CharField()
    roles = serializers.SerializerMethodField(help_text="What the caller may do here.")

    def get_roles(self, department) -> list[str]:
        access = self.context["access"]
        if access.is_staff:
            return ["staff"]
        entry = access.get(department.slug)
        roles = ["ingest"] if entry.can_ingest else []
        if entry.can_read:
            roles.append(READ_LEVEL_ROLE[entry.read_level])
        return roles
