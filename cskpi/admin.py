from django.contrib import admin, messages
from django.utils import timezone

from cskpi.models import ApiToken, Department, Grant
from cskpi.services import department_upsert


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "timezone", "created_at")
    search_fields = ("slug", "name")

    def save_model(self, request, obj, form, change):
        # Through the service: a timezone change must invalidate the day buckets.
        department_upsert(slug=obj.slug, name=obj.name, timezone=obj.timezone)


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("user", "department", "role", "agent", "created_at")
    list_filter = ("role", "department")
    search_fields = ("user__username", "agent")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "digest", "created_at", "last_used_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are issued with `manage.py issue_token`, which shows them once

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
