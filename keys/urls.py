from django.urls import path

from keys import views

app_name = "keys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("new/", views.key_create_view, name="create"),
    path("<int:key_id>/", views.key_detail, name="detail"),
    path("<int:key_id>/edit/", views.key_edit, name="edit"),
    path("<int:key_id>/disable/", views.key_set_status, {"active": False}, name="disable"),
    path("<int:key_id>/enable/", views.key_set_status, {"active": True}, name="enable"),
    path("<int:key_id>/rotate/", views.key_rotate_view, name="rotate"),
    path("<int:key_id>/revoke-previous/", views.key_revoke_previous_view, name="revoke_previous"),
    path("<int:key_id>/delete/", views.key_delete_view, name="delete"),
]
