"""Segment, topic, suppression and subscription pages under /app/. Every route has an
entry in ``access.endpoints``."""

from django.urls import path

from enclave.audience import pages

urlpatterns = [
    path("segments/", pages.segments_list, name="segments-list"),
    path("segments/new/", pages.segment_create, name="segments-create"),
    path("segments/preview/", pages.segment_preview, name="segments-preview"),
    path("segments/<int:segment_id>/", pages.segment_detail, name="segments-detail"),
    path("segments/<int:segment_id>/edit/", pages.segment_edit, name="segments-edit"),
    path("segments/<int:segment_id>/delete/", pages.segment_delete, name="segments-delete"),
    path("segments/<int:segment_id>/snapshot/", pages.segment_snapshot,
         name="segments-snapshot"),
    path("topics/", pages.topics_list, name="topics-list"),
    path("topics/<int:topic_id>/", pages.topic_detail, name="topics-detail"),
    path("suppressions/", pages.suppressions, name="suppressions"),
    path("people/<int:person_id>/subscriptions/", pages.person_subscriptions,
         name="people-subscriptions"),
]
