"""People as types, for every signature about a person in ``orders``.

- :data:`User` — a signed-in person: the site's user model (Django's own ``User``; the project does not swap
  it);
- :data:`Visitor` — whoever made a request or holds a session: a :data:`User`, or ``AnonymousUser`` when
  nobody is signed in;
- :func:`signed_in` — the :data:`User` behind a request that only signed-in people reach (a
  ``login_required`` view, the admin).

``None`` where a signature allows it means nobody at all: the operator's shell or the system itself (an
audit event without an actor, a command's write).
"""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as _User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

__all__ = ["User", "Visitor", "signed_in"]

User: TypeAlias = _User
Visitor: TypeAlias = _User | AnonymousUser


def signed_in(request: HttpRequest) -> User:
    """The person behind ``request``, for code only signed-in people reach; anyone else is refused (403)."""
    user = request.user
    if not isinstance(user, _User) or not user.is_authenticated:
        raise PermissionDenied
    return user
