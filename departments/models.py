from __future__ import annotations

from functools import cache

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from servicedesk.prepared import PreparedGet


class Priority(models.TextChoices):
    P1 = "P1", _("P1 – critical")
    P2 = "P2", _("P2 – high")
    P3 = "P3", _("P3 – moderate")
    P4 = "P4", _("P4 – low")


class UserManager(DjangoUserManager):
    """Django's, with `get(pk=…)` by SQL compiled once per process: every signed-in page
    starts with it (ModelBackend.get_user reads the session's person), and compiling the
    query cost more than running it."""

    def get(self, *args, **kwargs):
        if not args and kwargs.keys() == {"pk"} and self._db is None and self.model is User:
            return _user_by_pk().get(kwargs["pk"])
        return super().get(*args, **kwargs)


@cache
def _user_by_pk() -> PreparedGet:
    return PreparedGet(models.QuerySet(User), "pk")


class User(AbstractUser):
    """A person of the organisation. Files requests from its home department."""

    objects = UserManager()

    home_department = models.ForeignKey(
        "departments.Department",
        verbose_name=_("home department"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="people",
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class Department(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    code = models.CharField(
        _("code"), max_length=10, unique=True, help_text=_("Prefix of ticket references, e.g. IT.")
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    calendar = models.ForeignKey(
        "slas.Calendar",
        verbose_name=_("default calendar"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="departments",
    )
    default_standard = models.ForeignKey(
        "slas.ServiceStandard",
        verbose_name=_("default service standard"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="default_for_departments",
    )
    leads_may_configure = models.BooleanField(_("leads may configure standards"), default=False)
    active = models.BooleanField(_("active"), default=True)
    # Last reference number handed out; incremented under a row lock by ticket_create.
    last_ticket_number = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z][A-Z0-9]{0,9}$"), name="department_code_format"
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="department_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", _("agent")
        LEAD = "lead", _("lead")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=["member", "lead"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.department} ({self.get_role_display()})"


class Service(models.Model):
    """A catalogue entry: something a supplier department offers to the organisation."""

    department = models.ForeignKey(
        Department,
        verbose_name=_("supplier department"),
        on_delete=models.PROTECT,
        related_name="services",
    )
    name = models.CharField(_("name"), max_length=160)
    description = models.TextField(_("description"), blank=True)
    default_priority = models.CharField(
        _("default priority"), max_length=2, choices=Priority.choices, default=Priority.P3
    )
    requester_may_set_priority = models.BooleanField(
        _("requesters may choose the priority"), default=True
    )
    standard = models.ForeignKey(
        "slas.ServiceStandard",
        verbose_name=_("service standard"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="services",
        help_text=_("Leave empty to use the department's default standard."),
    )
    confidential = models.BooleanField(
        _("confidential"),
        default=False,
        help_text=_("Requests are visible only to the requester and the named handlers."),
    )
    handlers = models.ManyToManyField(
        User, verbose_name=_("named handlers"), blank=True, related_name="handled_services"
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["department", "name"], name="service_unique_name"),
            models.CheckConstraint(
                condition=Q(default_priority__in=["P1", "P2", "P3", "P4"]),
                name="service_priority_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.department.code} · {self.name}"

    @property
    def effective_standard_id(self) -> int | None:
        return self.standard_id or self.department.default_standard_id
