from servicedesk import permissions


def navigation(request):
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    return {
        "nav_is_agent": permissions.is_agent(user),
        "nav_is_lead": permissions.is_lead(user),
        "nav_is_admin": permissions.is_admin(user),
        "nav_can_configure": permissions.can_open_configuration(user),
    }
