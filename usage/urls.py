from django.urls import path

from usage import log_views

app_name = "usage"

urlpatterns = [
    path("requests/", log_views.request_log, name="log"),
    path("requests/export.csv", log_views.request_log_export, name="log_export"),
    path("requests/<str:request_id>/", log_views.request_detail, name="request"),
]
