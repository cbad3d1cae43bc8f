from django.contrib import admin

from audit.admin_hooks import AuditedAdminMixin
from slas.models import (
    Calendar,
    Escalation,
    Holiday,
    LadderLevel,
    ServiceStandard,
    SlaClock,
    StandardTarget,
    StandardVersion,
    WorkingInterval,
)


class WorkingIntervalInline(admin.TabularInline):
    model = WorkingInterval
    extra = 1


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(Calendar)
class CalendarAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "timezone", "always_open", "holiday_country", "holiday_subdivision")
    search_fields = ("name",)
    inlines = [WorkingIntervalInline, HolidayInline]


class PublishedContentInline(admin.TabularInline):
    """Targets and ladder are given when a version is added and shown, not edited, after:
    tickets filed under a version are measured against exactly its content, and the SLA
    engine caches a version's content per process (`slas.selectors.version_content`). A
    change is a new version (`standard_publish`)."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return obj is None and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None and super().has_delete_permission(request, obj)


class StandardTargetInline(PublishedContentInline):
    model = StandardTarget


class LadderLevelInline(PublishedContentInline):
    model = LadderLevel


@admin.register(StandardVersion)
class StandardVersionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("standard", "number", "calendar", "effective_from", "created_by")
    list_filter = ("standard",)
    list_select_related = ("standard", "calendar", "created_by")
    inlines = [StandardTargetInline, LadderLevelInline]


class StandardVersionInline(admin.TabularInline):
    model = StandardVersion
    extra = 0
    fields = ("number", "calendar", "effective_from", "created_by", "note")
    readonly_fields = fields
    show_change_link = True
    can_delete = False


@admin.register(ServiceStandard)
class ServiceStandardAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "department", "current_version")
    list_select_related = ("department", "current_version")
    search_fields = ("name",)
    inlines = [StandardVersionInline]


@admin.register(SlaClock)
class SlaClockAdmin(admin.ModelAdmin):
    list_display = ("ticket", "metric", "status", "target", "elapsed", "deadline", "breached_at")
    list_filter = ("metric", "status")
    list_select_related = ("ticket",)
    search_fields = ("ticket__reference",)
    raw_id_fields = ("ticket",)

    def has_change_permission(self, request, obj=None):
        return False  # clocks change only through the ticket services

    def has_add_permission(self, request):
        return False


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ("ticket", "metric", "threshold", "due_at", "fired_at")
    list_filter = ("metric",)
    list_select_related = ("ticket",)
    search_fields = ("ticket__reference",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
