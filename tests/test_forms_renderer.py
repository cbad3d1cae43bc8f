"""servicedesk/forms_renderer.py writes selects, inputs and textareas directly: the same bytes as
Django's Jinja2 widget templates, whatever the choices, values and attributes."""

from __future__ import annotations

import pytest
from django import forms
from django.forms.renderers import Jinja2
from django.forms.utils import ErrorDict, ErrorList
from django.utils.translation import gettext_lazy

from servicedesk.forms_renderer import WidgetRenderer

CHOICES = [
    ("", "Any"),
    ("a", "Plain"),
    (3, "An int value"),
    ("q\"'<&>", "Quotes \" ' and <b>&amp;</b>"),
    ("lazy", gettext_lazy("Priority")),
]
GROUPED = [
    ("", "—"),
    ("Fruit", [("apple", "Apple"), ("pear", "Pear & co")]),
    ("loose", "Loose"),
]

CASES = [
    (forms.Select(choices=CHOICES), None, {}),
    (forms.Select(choices=CHOICES), "a", {"id": "id_x"}),
    (forms.Select(choices=CHOICES), 3, {"id": "id_x", "aria-invalid": "true"}),
    (forms.Select(choices=CHOICES), "3", {"required": True, "disabled": False}),
    (forms.Select(choices=CHOICES), "q\"'<&>", {"data-x": 'a"b'}),
    (forms.Select(choices=CHOICES), "no such value", {"aria-describedby": "id_x_error"}),
    (forms.Select(choices=CHOICES, attrs={"class": "wide"}), "", {"id": "id_x"}),
    (forms.Select(choices=GROUPED), "pear", {"id": "id_g"}),
    (forms.Select(choices=[]), None, {}),
    (forms.SelectMultiple(choices=CHOICES), ["a", 3], {"id": "id_m"}),
    (forms.NullBooleanSelect(), True, {"id": "id_n"}),
]


@pytest.mark.parametrize(("widget", "value", "attrs"), CASES)
def test_direct_select_prints_what_djangos_jinja2_select_template_prints(widget, value, attrs):
    direct = widget.render("field", value, attrs=attrs, renderer=WidgetRenderer())
    templated = widget.render("field", value, attrs=attrs, renderer=Jinja2())
    assert direct == templated


def test_a_select_whose_options_have_their_own_template_goes_through_the_templates():
    class Custom(forms.Select):
        option_template_name = "django/forms/widgets/input_option.html"

    widget = Custom(choices=[("a", "A")])
    html = widget.render("field", "a", renderer=WidgetRenderer())
    assert html == widget.render("field", "a", renderer=Jinja2())
    assert "<option" not in html


def test_a_bound_filter_field_with_an_error_renders_as_before():
    class Filters(forms.Form):
        service = forms.TypedChoiceField(choices=CHOICES, coerce=str, required=False)

    form = Filters({"service": "missing"}, renderer=WidgetRenderer())
    direct = str(form["service"])
    form_templated = Filters({"service": "missing"}, renderer=Jinja2())
    assert direct == str(form_templated["service"])
    assert 'aria-invalid="true"' in direct


TRICKY = "q\"'<&> é"
INPUT_CASES = [
    (forms.TextInput(), None, {}),
    (forms.TextInput(), "", {"id": "id_x"}),
    (forms.TextInput(), TRICKY, {"id": "id_x", "aria-invalid": "true", "maxlength": 200}),
    (forms.TextInput(attrs={"placeholder": 'a"b'}), "v", {"required": True, "disabled": False}),
    (forms.EmailInput(), "a@b.example", {"id": "id_e"}),
    (forms.NumberInput(), 3, {"min": 0, "step": "any"}),
    (forms.NumberInput(), 0, {}),
    (forms.HiddenInput(), TRICKY, {}),
    (forms.PasswordInput(), "secret", {}),
    (forms.PasswordInput(render_value=True), "secret", {}),
    (forms.CheckboxInput(), True, {"id": "id_c"}),
    (forms.CheckboxInput(), False, {"id": "id_c"}),
    (forms.CheckboxInput(), "on", {}),
    (forms.DateInput(attrs={"type": "date"}), "2026-12-01", {}),
    (forms.DateTimeInput(), None, {}),
    (forms.TimeInput(), "10:30", {}),
    (forms.URLInput(), "https://example.org/?a=1&b=2", {}),
    (forms.FileInput(), None, {"accept": "image/*"}),
    (forms.Textarea(), None, {}),
    (forms.Textarea(), "", {"id": "id_t"}),
    (forms.Textarea(attrs={"rows": 8, "data-preview": "1"}), TRICKY + "\nsecond line", {}),
    (forms.Textarea(), "0", {"required": True}),
]


@pytest.mark.parametrize(("widget", "value", "attrs"), INPUT_CASES)
def test_direct_inputs_and_textareas_print_what_djangos_jinja2_templates_print(
    widget, value, attrs
):
    direct = widget.render("field", value, attrs=attrs, renderer=WidgetRenderer())
    templated = widget.render("field", value, attrs=attrs, renderer=Jinja2())
    assert direct == templated


def test_a_bound_form_with_errors_renders_its_inputs_as_before():
    class Comment(forms.Form):
        title = forms.CharField(max_length=5)
        body = forms.CharField(widget=forms.Textarea)
        count = forms.IntegerField(min_value=1)

    data = {"title": "far too long <b>", "body": "", "count": "0"}
    direct = Comment(data, renderer=WidgetRenderer())
    templated = Comment(data, renderer=Jinja2())
    for name in ("title", "body", "count"):
        assert str(direct[name]) == str(templated[name])
    assert 'aria-invalid="true"' in str(direct["title"])


@pytest.mark.parametrize(
    "errors",
    [
        ErrorList(),
        ErrorList(["Too <long>"], field_id="id_title"),
        ErrorList(["One", "Two"], error_class="nonfield"),
        ErrorDict(),
        ErrorDict({"title": ErrorList(["Required"])}),
    ],
    ids=["empty-list", "list", "nonfield-list", "empty-dict", "dict"],
)
@pytest.mark.parametrize("template", ["default", "ul"])
def test_error_lists_and_dicts_print_what_djangos_jinja2_templates_print(errors, template):
    kind = "dict" if isinstance(errors, ErrorDict) else "list"
    name = f"django/forms/errors/{kind}/{template}.html"
    context = errors.get_context()
    direct = WidgetRenderer().render(name, context)
    templated = Jinja2().render(name, context)
    assert direct == templated


def test_an_empty_error_list_prints_nothing_and_a_full_one_its_errors():
    form_errors = ErrorList(["Too <long>"], renderer=WidgetRenderer())
    assert str(ErrorList(renderer=WidgetRenderer())) == ""
    assert str(form_errors) == '<ul class="errorlist"><li>Too &lt;long&gt;</li></ul>'
