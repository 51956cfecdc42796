from django.urls import path

from usage import log_views, views

app_name = "usage"

urlpatterns = [
    path("", views.usage_page, name="page"),
    path("export.csv", views.usage_export, name="export"),
    path("requests/", log_views.request_log, name="log"),
    path("requests/export.csv", log_views.request_log_export, name="log_export"),
    path("requests/<str:request_id>/", log_views.request_detail, name="request"),
]
