"""Form widgets rendered with Jinja2 where Django ships a Jinja2 template for them.

Django ships every built-in widget template for both engines (`django/forms/templates` and
`django/forms/jinja2`); Jinja2 renders the widgets of a page with selects and radios at a
fraction of the Django-template cost (issue 10). Templates only the Django engine has (the
admin's widget wrappers) still render with it.
"""

from __future__ import annotations

from django.forms.renderers import BaseRenderer, DjangoTemplates, Jinja2
from django.template import TemplateDoesNotExist


class WidgetRenderer(BaseRenderer):
    def __init__(self):
        self.jinja2 = Jinja2()
        self.django = DjangoTemplates()

    def get_template(self, template_name):
        try:
            return self.jinja2.get_template(template_name)
        except TemplateDoesNotExist:
            return self.django.get_template(template_name)
