from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from audit.admin_hooks import AuditedAdminMixin
from audit.models import AuditRecord


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    """Read-only: the trail can be searched and read, never added to, changed or deleted here."""

    list_display = ("created_at", "actor_username", "action", "target_type", "target_repr", "via")
    list_filter = ("action", "target_type", "via")
    search_fields = ("actor_username", "target_repr", "target_id", "action")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in AuditRecord._meta.fields]
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Group permissions are user permissions one step removed: audit their changes too.
admin.site.unregister(Group)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass
