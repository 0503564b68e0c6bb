"""People as types, for every signature about a person in ``orders``.

- :data:`User` — a signed-in person: the site's user model (Django's own ``User``; the project does not swap
  it, and everything here needs only what ``AbstractUser`` has: username, ``is_active``, ``is_staff``,
  ``is_superuser``);
- :data:`Visitor` — whoever made a request or holds a session: a :data:`User`, or ``AnonymousUser`` when
  nobody is signed in.

``None`` where a signature allows it means nobody at all: the operator's shell or the system itself (an
audit event without an actor, a command's write).
"""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import AbstractUser, AnonymousUser

__all__ = ["User", "Visitor"]

User: TypeAlias = AbstractUser
Visitor: TypeAlias = AbstractUser | AnonymousUser
