from django.urls import path

from console import views

urlpatterns = [
    path("", views.home, name="home"),
    path("docs/", views.docs, name="docs"),
    path("pricing/", views.pricing, name="pricing"),
]
