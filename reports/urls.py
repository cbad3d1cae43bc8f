from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.index, name="index"),
    path("map/", views.organisation_map, name="organisation_map"),
    path("satisfaction/", views.satisfaction, name="satisfaction"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("export/<slug:table>.csv", views.export_csv, name="export_csv"),
    path("exports/<int:pk>/", views.export_detail, name="export_detail"),
    path("exports/<int:pk>/status/", views.export_status, name="export_status"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
    path("exports/<int:pk>/retry/", views.export_retry, name="export_retry"),
    path("<slug:slug>/", views.department_redirect, name="department_home"),
    path("<slug:slug>/<str:side>/", views.department_dashboard, name="department"),
]
