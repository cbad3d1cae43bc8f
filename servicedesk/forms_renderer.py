"""Form widgets rendered with Jinja2 where Django ships a Jinja2 template for them.

Django ships every built-in widget template for both engines (`django/forms/templates` and
`django/forms/jinja2`); Jinja2 renders the widgets of a page with selects and radios at a
fraction of the Django-template cost (issue 10). Templates only the Django engine has (the
admin's widget wrappers) still render with it.

Selects, inputs and textareas are written directly: Django's select.html includes
select_option.html once per option (the queue's filters were ~3 ms of its CPU that way), and
every input and textarea includes attrs.html, each include a new template context (the ticket
page's forms were ~1 ms). `_select_html`, `_input_html` and `_textarea_html` print what those
Jinja2 templates print, byte for byte (tests/test_forms_renderer.py compares them); an option
with a template of its own still goes through the templates. An empty error list or dict
prints nothing, without its template (a render with a new context per field: ~4 % of the
queue).
"""

from __future__ import annotations

from django.forms.renderers import BaseRenderer, DjangoTemplates, Jinja2
from django.template import TemplateDoesNotExist
from markupsafe import escape

SELECT_TEMPLATE = "django/forms/widgets/select.html"
OPTION_TEMPLATE = "django/forms/widgets/select_option.html"
TEXTAREA_TEMPLATE = "django/forms/widgets/textarea.html"
# Error lists and dicts as <ul>: each prints nothing when there are no errors, and every field
# of every form on a page prints its (mostly empty) errors.
ERROR_TEMPLATES = frozenset(
    f"django/forms/errors/{kind}/{name}.html"
    for kind in ("list", "dict")
    for name in ("default", "ul")
)
# input.html and Django's Jinja2 widget templates that are nothing but an include of it.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "input",
        *("checkbox", "color", "date", "datetime", "email", "file", "hidden", "number"),
        *("password", "search", "tel", "text", "time", "url"),
    )
)


def _attrs_html(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: True prints the bare name, False nothing."""
    return "".join(
        f" {escape(name)}" if value is True else f' {escape(name)}="{escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _select_html(widget: dict) -> str | None:
    """select.html for a Select's context, or None when an option has another template."""
    parts = [f'<select name="{escape(widget["name"])}"{_attrs_html(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{escape(group_name)}">')
        for option in options:
            if option["template_name"] != OPTION_TEMPLATE:
                return None
            parts.append(
                f'\n  <option value="{escape(option["value"])}"{_attrs_html(option["attrs"])}>'
                f"{escape(option['label'])}</option>"
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _input_html(widget: dict) -> str:
    """input.html: the value only when it is not None."""
    value = widget["value"]
    value_html = "" if value is None else f' value="{escape(value)}"'
    return (
        f'<input type="{escape(widget["type"])}" name="{escape(widget["name"])}"'
        f"{value_html}{_attrs_html(widget['attrs'])}>"
    )


def _textarea_html(widget: dict) -> str:
    """textarea.html: the value on the line after the tag, when it is truthy."""
    value = widget["value"]
    return (
        f'<textarea name="{escape(widget["name"])}"{_attrs_html(widget["attrs"])}>\n'
        f"{escape(value) if value else ''}</textarea>"
    )


class WidgetRenderer(BaseRenderer):
    def __init__(self):
        self.jinja2 = Jinja2()
        self.django = DjangoTemplates()

    def get_template(self, template_name):
        try:
            return self.jinja2.get_template(template_name)
        except TemplateDoesNotExist:
            return self.django.get_template(template_name)

    def render(self, template_name, context, request=None):
        if template_name == SELECT_TEMPLATE:
            html = _select_html(context["widget"])
            if html is not None:
                return html
        elif template_name in INPUT_TEMPLATES:
            return _input_html(context["widget"])
        elif template_name == TEXTAREA_TEMPLATE:
            return _textarea_html(context["widget"])
        elif template_name in ERROR_TEMPLATES and not context["errors"]:
            return ""
        return super().render(template_name, context, request=request)
