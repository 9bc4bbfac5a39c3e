"""Tenant-scoped, permission-checked reads of segments.

Another account's segment looks exactly like a missing one (Http404); a missing
permission raises ``access.principal.NotAuthorized`` (403).
"""

from __future__ import annotations

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.audience.models import Segment


def segments_of(principal: Principal):
    """The account's segments, by name (needs ``segments.read``)."""
    authorize(principal, Permission.SEGMENTS_READ)
    return Segment.objects.filter(account_id=principal.account_id).order_by("name", "pk")


def access_segment(principal: Principal, segment_id, *, for_write: bool = False) -> Segment:
    """One segment of the principal's account; Http404 if missing or another account's."""
    authorize(principal, Permission.SEGMENTS_MANAGE if for_write
              else Permission.SEGMENTS_READ)
    try:
        segment_id = int(segment_id)
    except (TypeError, ValueError):
        raise Http404("No such segment.") from None
    segment = Segment.objects.filter(account_id=principal.account_id, pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment.")
    return segment
