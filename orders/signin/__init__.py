"""Sign-in: the page and its forms, the throttle and the second factor.

- :mod:`~orders.signin.views` — the sign-in page (sign-out is Django's ``LogoutView``);
- :mod:`~orders.signin.forms` — the sign-in forms of the site and the admin;
- :mod:`~orders.signin.throttle` — django-axes' glue: client address, username, the lockout page (S25);
- :mod:`~orders.signin.two_factor` — enrolment and the token step (S30); who owes it is
  :mod:`orders.accounts.access`, and the middleware that enforces it is :mod:`orders.middleware`.
"""
