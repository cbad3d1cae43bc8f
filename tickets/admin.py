from django.contrib import admin

from tickets.models import Attachment, Comment, Event, Notification, SatisfactionRating, Ticket


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CommentInline(ReadOnlyInline):
    model = Comment
    fields = ("created_at", "author", "internal", "body")
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("created_at", "actor", "kind", "field", "before", "after")
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    """Read-mostly: tickets change through the app's services so every change is audited."""

    list_display = (
        "reference",
        "title",
        "supplier_department",
        "customer_department",
        "priority",
        "status",
        "assignee",
        "created_at",
    )
    list_filter = ("status", "priority", "supplier_department", "confidential")
    list_select_related = ("supplier_department", "customer_department", "assignee")
    search_fields = ("reference", "title", "requester__username")
    date_hierarchy = "created_at"
    inlines = [CommentInline, EventInline]
    readonly_fields = [f.name for f in Ticket._meta.fields] + ["watchers"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("ticket", "kind", "actor", "field", "created_at")
    list_filter = ("kind",)
    list_select_related = ("ticket", "actor")
    search_fields = ("ticket__reference",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SatisfactionRating)
class SatisfactionRatingAdmin(admin.ModelAdmin):
    list_display = ("ticket", "rating", "supplier_department", "customer_department", "created_at")
    list_filter = ("rating", "supplier_department")
    list_select_related = ("ticket", "supplier_department", "customer_department")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("recipient", "message", "created_at", "read_at")
    list_select_related = ("recipient",)
    search_fields = ("recipient__username", "message")


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("filename", "ticket", "content_type", "size", "created_at")
    list_select_related = ("ticket",)

    def has_add_permission(self, request):
        return False
