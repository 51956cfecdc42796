from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("keys/", include("keys.urls")),
    path("billing/", include("billing.urls")),
    path("", include("accounts.urls")),
    path("", include("console.urls")),
]
