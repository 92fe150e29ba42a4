from rest_framework import serializers

from cskpi.choices import ReadLevel
from cskpi.models import Department
from cskpi.validators import zone_get


class DepartmentInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    timezone = serializers.CharField(max_length=64, required=False, help_text="IANA zone, e.g. Asia/Ho_Chi_Minh.")

    def validate_slug(self, value):
        if Department.objects.filter(slug=value).exists():
            raise serializers.ValidationError("A department with this slug exists.", code="unique")
        return value

    def validate_timezone(self, value):
        if zone_get(value) is None:
            raise serializers.ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")
        return value


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
