"""Script injection (issue 9 §3): whatever people type — titles, descriptions, replies, their
names, department and service names, file names — is shown as text or as sanitised Markdown,
never as markup that runs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from departments.models import Department, Service
from tickets import services
from tickets.markdown import render_markdown
from tickets.models import Notification

SCRIPT = '<script>alert("xss")</script>'
IMG = '<img src=x onerror=alert("xss")>'
SVG = '<svg/onload=alert("xss")>'
QUOTE = '"><script>alert("xss")</script>'
PAYLOAD = f"{SCRIPT} {IMG} {SVG} {QUOTE}"


class _Markup(HTMLParser):
    """The elements and attributes a browser would build from the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def active_markup(html: str) -> list[str]:
    """Executable markup in `html`: inline scripts, on* handlers, javascript: URLs, injected
    frames, objects and images."""
    parser = _Markup()
    parser.feed(html)
    found = []
    for tag, attrs in parser.tags:
        if tag == "script" and "src" not in attrs and "json" not in attrs.get("type", ""):
            found.append("inline <script>")
        # (The pages' own SVG icons are fine; an injected <svg onload> is caught as on*.)
        if tag in ("iframe", "object", "embed", "base") or (
            tag == "meta" and "http-equiv" in attrs
        ):
            found.append(f"<{tag}>")
        if tag == "img" and attrs.get("src") == "x":
            found.append("injected <img>")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action", "formaction", "xlink:href"):
                scheme = "".join(value.split()).lower()
                if scheme.startswith(("javascript:", "vbscript:", "data:text/html")):
                    found.append(f"<{tag} {name}={value[:30]}>")
    return found


def assert_inert(html: str, where: str = "") -> None:
    """No executable markup from the payloads (escaped text is fine)."""
    assert active_markup(html) == [], where


# --- Markdown sanitising (unit) -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        SCRIPT,
        IMG,
        SVG,
        QUOTE,
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="java&#x09;script:alert(1)">x</a>',
        "![x](javascript:alert(1))",
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<p style="position:fixed;top:0">overlay</p>',
        '<form action="https://evil.example"><input name=p></form>',
        '<object data="x.swf"></object><embed src="x.swf">',
        '<math><mtext><table><mglyph><style><img src=x onerror=alert("xss")>',
        "<<script>script>alert(1)<</script>/script>",
        '```\n</code></pre><script>alert("xss")</script>\n```',
        "| a |\n|---|\n| <script>alert(1)</script> |",
    ],
)
def test_markdown_output_holds_no_active_content(text):
    html = str(render_markdown(text))
    assert active_markup(html) == []
    parser = _Markup()
    parser.feed(html)
    allowed = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a"}
    allowed |= {"h1", "h2", "h3", "h4", "hr", "table", "thead", "tbody", "tr", "th", "td"}
    for tag, attrs in parser.tags:
        assert tag in allowed, tag
        assert set(attrs) <= {"href", "title", "rel"}, attrs
        href = "".join(attrs.get("href", "").split()).lower()
        assert not href or href.startswith(("http:", "https:", "mailto:")), href


def test_markdown_links_get_rel_noopener():
    html = str(render_markdown("[docs](https://example.org)"))
    assert 'href="https://example.org"' in html
    assert "noopener" in html


# --- Pages ----------------------------------------------------------------------------------


@pytest.fixture
def hostile(org):
    """Every user-typed field of the organisation carries the payload."""
    for user in (org.employee, org.it_agent):
        user.first_name = SCRIPT
        user.last_name = IMG
        user.save()
    Department.objects.filter(pk=org.it.pk).update(name=f"IT {SVG}")
    Service.objects.filter(pk=org.service.pk).update(
        name=f"Laptop {IMG}", description=f"Fix it {PAYLOAD}"
    )
    org.service.refresh_from_db()
    ticket = services.ticket_create(
        requester=org.employee,
        service=org.service,
        title=f"Title {SCRIPT}"[:200],
        description=PAYLOAD + "\n\n[click](javascript:alert(1))",
        attachments=[
            SimpleUploadedFile(f'{IMG}"evil.txt', b"hello", content_type="text/plain"),
        ],
    )
    services.ticket_comment(ticket=ticket, author=org.it_agent, body=PAYLOAD)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body=PAYLOAD, internal=True)
    services.ticket_assign(ticket=ticket, actor=org.it_agent, assignee=org.it_agent)
    Notification.objects.create(
        recipient=org.employee,
        ticket=ticket,
        message=f"Answer {SCRIPT}",
        dedupe_key="xss",
        created_at=timezone.now(),
    )
    return ticket


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("employee", lambda t: reverse("ticket_detail", args=[t.reference])),
        ("it_agent", lambda t: reverse("ticket_detail", args=[t.reference])),
        ("it_agent", lambda t: reverse("queue")),
        ("it_agent", lambda t: reverse("queue") + "?q=" + SCRIPT),
        ("employee", lambda t: reverse("my_requests")),
        ("employee", lambda t: reverse("catalogue")),
        ("employee", lambda t: reverse("catalogue") + "?q=" + SCRIPT),
        ("employee", lambda t: reverse("ticket_new") + f"?service={t.service_id}"),
        ("employee", lambda t: reverse("notifications")),
        ("it_lead", lambda t: reverse("reports:tickets") + "?supplier=it"),
        ("it_lead", lambda t: reverse("reports:department", args=["it", "supplier"])),
        ("admin", lambda t: reverse("reports:organisation_map")),
        ("admin", lambda t: reverse("admin:tickets_ticket_changelist")),
        ("admin", lambda t: reverse("admin:tickets_ticket_change", args=[t.pk])),
        ("admin", lambda t: reverse("admin:departments_user_changelist")),
        ("admin", lambda t: reverse("admin:audit_auditrecord_changelist")),
        ("admin", lambda t: reverse("config:home")),
    ],
)
def test_pages_show_user_text_inert(client, org, hostile, who, url):
    client.force_login(getattr(org, who))
    target = url(hostile)
    response = client.get(target)
    assert response.status_code == 200, target
    assert_inert(response.content.decode(), target)


def test_the_payload_is_shown_as_text(client, org, hostile):
    client.force_login(org.it_agent)
    html = client.get(reverse("ticket_detail", args=[hostile.reference])).content.decode()
    assert "&lt;script&gt;alert(" in html
    assert "evil.txt" in html


def test_markdown_preview_is_sanitised(client, org):
    client.force_login(org.employee)
    response = client.post(reverse("markdown_preview"), {"text": PAYLOAD})
    assert response.status_code == 200
    assert_inert(response.content.decode().replace("\\u003C", "<").replace("\\u003E", ">"))


def test_api_returns_user_text_as_json_not_html(client, org, hostile):
    client.force_login(org.employee)
    response = client.get(f"/api/v1/tickets/{hostile.reference}/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_checker_itself_catches_active_markup():
    assert active_markup(SCRIPT) and active_markup(IMG) and active_markup(SVG)
    assert active_markup('<a href=" JavaScript:alert(1)">x</a>')
    assert active_markup("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>") == []
