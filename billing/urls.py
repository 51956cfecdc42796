from django.urls import path

from billing import codes_views

app_name = "billing"

urlpatterns = [
    path("redeem", codes_views.redeem, name="redeem"),
]
