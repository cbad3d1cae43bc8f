"""{% notification_bell %}: the header bell with the unread count (one indexed COUNT)."""

from django import template

from tickets.notifications import unread_count

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context):
    user = context.get("user")
    return {"unread": unread_count(user=user)}
