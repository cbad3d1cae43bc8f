"""A directory backend for tests/test_sso_ready.py: the shape of django-auth-ldap's or
mozilla-django-oidc's backends (the directory vouches for the person, the account is made on
first sign-in with no local password). Not shipped; plugged in through settings only."""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend

from departments.models import User

DIRECTORY = {"dana.dir": ("s3cret-from-directory", "Dana", "Directory")}


class DirectoryBackend(BaseBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        entry = DIRECTORY.get(username or "")
        if entry is None or password != entry[0]:
            return None
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": entry[1], "last_name": entry[2]}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    def get_user(self, user_id):
        return User.objects.filter(pk=user_id, is_active=True).first()
