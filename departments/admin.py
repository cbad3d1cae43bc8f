from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from audit.admin_hooks import AuditedAdminMixin
from departments.models import Department, Membership, Service, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(AuditedAdminMixin, BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Organisation"), {"fields": ("home_department", "time_zone")}),
    )
    list_display = ("username", "first_name", "last_name", "email", "home_department", "is_active")
    list_filter = ("home_department", "is_active", "is_superuser")
    list_select_related = ("home_department",)
    search_fields = ("username", "first_name", "last_name", "email")


@admin.register(Department)
class DepartmentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "code", "slug", "parent", "calendar", "default_standard", "active")
    list_filter = ("active", "leads_may_configure")
    list_select_related = ("parent", "calendar", "default_standard")
    search_fields = ("name", "code", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
    readonly_fields = ("last_ticket_number",)


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "department", "role")
    list_filter = ("role", "department")
    list_select_related = ("user", "department")
    search_fields = ("user__username", "department__name")
    autocomplete_fields = ["user", "department"]


@admin.register(Service)
class ServiceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "department", "default_priority", "standard", "confidential", "active")
    list_filter = ("department", "active", "confidential", "default_priority")
    list_select_related = ("department", "standard")
    search_fields = ("name", "description", "department__name")
    filter_horizontal = ("handlers",)
