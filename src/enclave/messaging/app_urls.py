"""Email template pages under /app/templates/, broadcasts under /app/broadcasts/, sender
domains under /app/senders/, captured mail under /app/captured/.
Every route has an entry in ``access.endpoints``."""

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
    path("broadcasts/", pages.broadcasts_list, name="broadcasts-list"),
    path("broadcasts/<int:broadcast_id>/", pages.broadcast_detail, name="broadcasts-detail"),
    path("broadcasts/<int:broadcast_id>/send/", pages.broadcast_send, name="broadcasts-send"),
    path("broadcasts/<int:broadcast_id>/cancel/", pages.broadcast_cancel,
         name="broadcasts-cancel"),
    path("broadcasts/<int:broadcast_id>/schedule/", pages.broadcast_schedule,
         name="broadcasts-schedule"),
    path("broadcasts/<int:broadcast_id>/pause/", pages.broadcast_pause,
         name="broadcasts-pause"),
    path("broadcasts/<int:broadcast_id>/resume/", pages.broadcast_resume,
         name="broadcasts-resume"),
    path("broadcasts/<int:broadcast_id>/test/", pages.broadcast_test, name="broadcasts-test"),
    path("broadcasts/<int:broadcast_id>/delete/", pages.broadcast_delete,
         name="broadcasts-delete"),
    path("captured/", pages.captured_list, name="captured-list"),
    path("captured/<str:row_id>/", pages.captured_detail, name="captured-detail"),
    path("captured/<str:row_id>/html", pages.captured_html, name="captured-html"),
    path("senders/", pages.senders_list, name="senders-list"),
    path("senders/address/", pages.senders_address, name="senders-address"),
    path("senders/<int:domain_id>/", pages.sender_detail, name="senders-detail"),
    path("senders/<int:domain_id>/check/", pages.sender_check, name="senders-check"),
    path("senders/<int:domain_id>/rotate/", pages.sender_rotate, name="senders-rotate"),
    path("senders/<int:domain_id>/remove/", pages.sender_remove, name="senders-remove"),
    path("senders/<int:domain_id>/throttle/", pages.sender_throttle,
         name="senders-throttle"),
]
