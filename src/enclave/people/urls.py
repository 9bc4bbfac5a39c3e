"""People pages under /app/people/. Every route has an entry in ``access.endpoints``."""

from django.urls import path

from enclave.people import views

urlpatterns = [
    path("", views.people_list, name="people-list"),
    path("new/", views.person_create, name="people-create"),
    path("export.csv", views.people_export, name="people-export"),
    path("fields/", views.people_fields, name="people-fields"),
    path("import/", views.people_import, name="people-import"),
    path("import/confirm/", views.people_import_confirm, name="people-import-confirm"),
    path("import/cancel/", views.people_import_cancel, name="people-import-cancel"),
    path("<int:person_id>/", views.person_detail, name="people-detail"),
    path("<int:person_id>/edit/", views.person_edit, name="people-edit"),
    path("<int:person_id>/reveal/", views.person_reveal, name="people-reveal"),
    path("<int:person_id>/archive/", views.person_archive, name="people-archive"),
    path("<int:person_id>/erase/", views.person_erase, name="people-erase"),
]
