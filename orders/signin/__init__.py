"""Sign-in: the page and its forms, the throttle and the second factor.

- :mod:`~orders.signin.views` — the sign-in page (sign-out is Django's ``LogoutView``);
- :mod:`~orders.signin.forms` — the sign-in forms of the site and the admin;
- :mod:`~orders.signin.throttle` — django-axes' glue and rules: client address (IPv6 by /64), username, the
  per-address lockout and the per-username slowdown, the refusal page (S25, S38);
- :mod:`~orders.signin.two_factor` — enrolment (QR code, password again), the token step and new recovery codes
  (S30, S35); who owes it is :mod:`orders.accounts.access`, and the middleware that enforces it is
  :mod:`orders.middleware`;
- :mod:`~orders.signin.sessions` — "Your sessions": where a person is signed in, and signing out everywhere else.
"""
