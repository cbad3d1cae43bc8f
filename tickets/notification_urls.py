from django.urls import path

from tickets import notification_views

urlpatterns = [
    path("", notification_views.notification_list, name="notifications"),
    path("read-all/", notification_views.notification_read_all, name="notification_read_all"),
    path(
        "<int:notification_id>/read/",
        notification_views.notification_read,
        name="notification_read",
    ),
]
