from django.urls import path

from tickets import attachments, views

urlpatterns = [
    path("", views.home, name="home"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("requests/", views.my_requests, name="my_requests"),
    path("queue/", views.queue, name="queue"),
    path("queue/bulk/", views.queue_bulk, name="queue_bulk"),
    path("preview/", views.markdown_preview, name="markdown_preview"),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<str:reference>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<str:reference>/comment/", views.ticket_comment, name="ticket_comment"),
    path("tickets/<str:reference>/transition/", views.ticket_transition, name="ticket_transition"),
    path("tickets/<str:reference>/assign/", views.ticket_assign, name="ticket_assign"),
    path("tickets/<str:reference>/priority/", views.ticket_priority, name="ticket_priority"),
    path("tickets/<str:reference>/service/", views.ticket_service, name="ticket_service"),
    path("tickets/<str:reference>/watchers/", views.ticket_watchers, name="ticket_watchers"),
    path("tickets/<str:reference>/link/", views.ticket_link, name="ticket_link"),
    path("tickets/<str:reference>/rate/", views.ticket_rate, name="ticket_rate"),
    path("attachments/<int:pk>/", attachments.attachment_download, name="attachment_download"),
]
