"""Attachments (issue 9 §3): stored outside static/ under random names, served only through a
permission check, as downloads with passive content types and RFC 5987 file names."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditRecord
from departments.models import Service
from servicedesk.errors import DomainError
from tickets import services
from tickets.attachments import content_disposition, safe_content_type


def upload(name="report.pdf", content=b"%PDF-1.4 hello", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def ticket(org):
    return services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="Broken screen",
        attachments=[upload()],
    )


@pytest.fixture
def public_file(ticket):
    return ticket.attachments.get()


@pytest.fixture
def internal_file(org, ticket):
    comment = services.ticket_comment(
        ticket=ticket,
        author=org.it_agent,
        body="Vendor quote attached",
        internal=True,
        attachments=[upload("quote.pdf")],
    )
    return comment.attachments.get()


def url(attachment):
    return reverse("attachment_download", kwargs={"pk": attachment.pk})


def test_file_is_stored_under_media_root_with_a_random_name(public_file):
    path = Path(public_file.file.path).resolve()
    assert path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    for static_dir in [*settings.STATICFILES_DIRS, settings.STATIC_ROOT]:
        assert not path.is_relative_to(Path(static_dir).resolve())
    assert "report" not in path.name
    assert public_file.filename == "report.pdf"


def test_media_is_not_served_by_url(client, org, public_file):
    client.force_login(org.employee)
    relative = public_file.file.name
    for prefix in ("/media/", settings.MEDIA_URL, "/static/"):
        assert client.get(prefix + relative).status_code == 404


@pytest.mark.parametrize("who", ["employee", "it_agent", "it_lead", "admin"])
def test_those_who_see_the_ticket_download_its_files(client, org, public_file, who):
    client.force_login(getattr(org, who))
    response = client.get(url(public_file))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 hello"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("who", ["hr_agent", "finance_lead", "outsider"])
def test_others_get_404(client, org, public_file, who):
    client.force_login(getattr(org, who))
    assert client.get(url(public_file)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, public_file):
    response = client.get(url(public_file))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unknown_attachment_is_404(client, org):
    client.force_login(org.admin)
    assert client.get(reverse("attachment_download", kwargs={"pk": 999999})).status_code == 404


def test_post_is_405(client, org, public_file):
    client.force_login(org.employee)
    assert client.post(url(public_file)).status_code == 405


def test_internal_note_file_is_hidden_from_the_requester(client, org, internal_file):
    client.force_login(org.employee)
    assert client.get(url(internal_file)).status_code == 404


def test_internal_note_file_is_served_to_the_supplier(client, org, internal_file):
    client.force_login(org.it_lead)
    assert client.get(url(internal_file)).status_code == 200


def test_file_missing_on_disk_is_404_not_500(client, org, public_file):
    Path(public_file.file.path).unlink()
    client.force_login(org.employee)
    assert client.get(url(public_file)).status_code == 404


@pytest.mark.parametrize(
    "claimed",
    [
        "text/html",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/xml",
        "application/javascript",
        "TEXT/HTML; charset=utf-8",
        "",
        "multipart/x-mixed-replace",
    ],
)
def test_active_content_types_are_served_as_opaque_bytes(claimed):
    assert safe_content_type(claimed) == "application/octet-stream"


def test_text_is_served_with_a_declared_charset():
    assert safe_content_type("text/plain") == "text/plain; charset=utf-8"


def test_html_upload_that_slipped_through_is_downloaded_not_rendered(client, org, ticket, settings):
    # Even if an administrator widens ATTACHMENT_ALLOWED_TYPES, HTML never renders inline.
    settings.ATTACHMENT_ALLOWED_TYPES = [*settings.ATTACHMENT_ALLOWED_TYPES, "text/html"]
    comment = services.ticket_comment(
        ticket=ticket,
        author=org.employee,
        body="see file",
        attachments=[upload("x.html", b"<script>alert(1)</script>", "text/html")],
    )
    client.force_login(org.employee)
    response = client.get(url(comment.attachments.get()))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_disallowed_type_is_refused_at_upload(org):
    with pytest.raises(DomainError):
        services.ticket_create(
            requester=org.employee,
            service=org.service,
            title="x",
            attachments=[upload("x.html", b"<script>", "text/html")],
        )


def test_oversized_upload_is_refused(org, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    with pytest.raises(DomainError):
        services.ticket_create(
            requester=org.employee,
            service=org.service,
            title="x",
            attachments=[upload(content=b"x" * 11)],
        )


def test_oversized_upload_through_the_form_is_a_form_error(client, org, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    client.force_login(org.employee)
    response = client.post(
        reverse("ticket_new"),
        {"service": org.service.pk, "title": "Big", "attachments": [upload(content=b"x" * 11)]},
    )
    assert response.status_code in (200, 400)
    assert not org.service.tickets.exists()


def test_content_disposition_encodes_unicode_names_rfc5987():
    header = content_disposition("Gehaltsabrechnung März €.pdf")
    assert header.startswith('attachment; filename="Gehaltsabrechnung M_rz _.pdf"')
    assert header.endswith("filename*=UTF-8''" + quote("Gehaltsabrechnung März €.pdf", safe=""))


def test_content_disposition_neutralises_quotes_and_header_injection():
    header = content_disposition('a"; filename="evil.html\r\nSet-Cookie: x=1.pdf')
    assert "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in fallback and ";" not in fallback
    assert 'filename="evil.html' not in header


def test_malicious_file_name_is_stored_without_path_or_markup(client, org):
    ticket = services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="x",
        attachments=[upload('../../etc/<img src=x onerror=alert(1)>"passwd.pdf')],
    )
    attachment = ticket.attachments.get()
    assert "/" not in attachment.filename and "<" not in attachment.filename
    assert Path(attachment.file.path).resolve().is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    client.force_login(org.employee)
    response = client.get(url(attachment))
    assert response.status_code == 200


@pytest.fixture
def confidential_file(org):
    payroll = Service.objects.create(department=org.hr, name="Payroll", confidential=True)
    payroll.handlers.add(org.hr_agent)
    ticket = services.ticket_create(
        requester=org.employee, service=payroll, title="Salary", attachments=[upload()]
    )
    return ticket.attachments.get()


def test_confidential_file_download_is_audited(client, org, confidential_file):
    client.force_login(org.hr_agent)
    assert client.get(url(confidential_file)).status_code == 200
    record = AuditRecord.objects.get(action="attachment.read")
    assert record.actor == org.hr_agent and record.ip_address == "127.0.0.1"


def test_confidential_file_is_404_for_other_agents_and_refusal_audited(
    client, org, confidential_file
):
    from tests.factories import MembershipFactory, UserFactory

    colleague = UserFactory(username="hrcolleague", home_department=org.hr)
    MembershipFactory(user=colleague, department=org.hr, role="lead")
    client.force_login(colleague)
    assert client.get(url(confidential_file)).status_code == 404
    assert AuditRecord.objects.filter(action="attachment.read_denied", actor=colleague).exists()
