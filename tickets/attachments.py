"""Download of attachments: the only way a stored file leaves the server.

Files live under MEDIA_ROOT (outside static/, never served by the web server or WhiteNoise)
with random names. This view answers 404 unless the user may see the ticket — and, for a file
of an internal note, the internal notes — so ids do not leak. Every answer is a download
(`Content-Disposition: attachment`), with a content type from a fixed list of passive types and
`X-Content-Type-Options: nosniff`, so an uploaded HTML or SVG file can never run as a page of
this site.
"""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from audit.services import audit_record
from servicedesk import permissions
from tickets.models import Attachment

# Types a browser only displays or hands to another program; anything else (text/html,
# image/svg+xml, text/xml, application/javascript…) is served as opaque bytes.
PASSIVE_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
FALLBACK_TYPE = "application/octet-stream"
# A download opened in a tab anyway gets a policy that allows nothing to run.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def safe_content_type(stored: str) -> str:
    """The Content-Type to send for a file whose upload claimed `stored`."""
    base = (stored or "").split(";")[0].strip().lower()
    if base not in PASSIVE_TYPES:
        return FALLBACK_TYPE
    if base.startswith("text/"):
        # Declared charset: a browser must not sniff one (UTF-7 tricks).
        return f"{base}; charset=utf-8"
    return base


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name RFC 5987-encoded."""
    name = "".join(ch for ch in (filename or "") if ch.isprintable()) or "file"
    fallback = "".join(
        ch if (ch.isascii() and ch not in '"\\;' and ch.isprintable()) else "_" for ch in name
    )
    encoded = quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@login_required
@require_safe
def attachment_download(request, pk: int):
    attachment = get_object_or_404(
        Attachment.objects.select_related("ticket__service", "comment"), pk=pk
    )
    ticket = attachment.ticket
    user = request.user
    if not permissions.can_view_attachment(user, attachment):
        if ticket.confidential:
            audit_record(
                actor=user,
                action="attachment.read_denied",
                target=attachment,
                target_repr=f"{ticket.reference} #{attachment.pk}",
                request=request,
            )
        raise Http404
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    if ticket.confidential:
        audit_record(
            actor=user,
            action="attachment.read",
            target=attachment,
            target_repr=f"{ticket.reference} #{attachment.pk}",
            request=request,
        )
    response = FileResponse(handle, content_type=safe_content_type(attachment.content_type))
    response["Content-Disposition"] = content_disposition(attachment.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    patch_cache_control(response, private=True, no_store=True)
    return response
