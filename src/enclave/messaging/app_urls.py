"""Email template pages under /app/templates/. Every route has an entry in
``access.endpoints``."""

from django.urls import path

from enclave.messaging import pages

urlpatterns = [
    path("templates/", pages.templates_list, name="templates-list"),
    path("templates/new/", pages.template_create, name="templates-create"),
    path("templates/<int:template_id>/", pages.template_detail, name="templates-detail"),
    path("templates/<int:template_id>/delete/", pages.template_delete,
         name="templates-delete"),
    path("templates/<int:template_id>/preview/", pages.template_preview,
         name="templates-preview"),
    path("templates/<int:template_id>/preview/html", pages.template_preview_html,
         name="templates-preview-html"),
]
