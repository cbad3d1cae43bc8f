from django.urls import path

from slas import views

app_name = "config"

urlpatterns = [
    path("", views.home, name="home"),
    path("calendars/new/", views.calendar_edit, name="calendar_new"),
    path("calendars/<int:pk>/", views.calendar_detail, name="calendar_detail"),
    path("calendars/<int:pk>/edit/", views.calendar_edit, name="calendar_edit"),
    path("standards/new/", views.standard_edit, name="standard_new"),
    path("standards/<int:pk>/", views.standard_edit, name="standard_edit"),
    path(
        "standards/<int:pk>/versions/<int:number>/",
        views.standard_version,
        name="standard_version",
    ),
    path("standards/<int:pk>/retarget/", views.standard_retarget, name="standard_retarget"),
    path("replays/<int:pk>/", views.replay_job, name="replay_job"),
    path("replays/<int:pk>/status/", views.replay_job_status, name="replay_job_status"),
    path("replays/<int:pk>/retry/", views.replay_job_retry, name="replay_job_retry"),
]
