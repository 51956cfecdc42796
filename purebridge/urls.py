from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("keys/", include("keys.urls")),
    path("billing/", include("billing.urls")),
    path("usage/", include("usage.urls")),
    path("", include("accounts.urls")),
    path("", include("console.urls")),
]

# A database or Redis that cannot answer is a 503 page, anything else the 500 page.
handler500 = "console.unavailable.server_error"
