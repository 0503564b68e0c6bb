"""qfexdash settings: one module, every value from the environment.

With no environment at all the project runs locally: SQLite in ``var/``, the in-memory channel
layer, a secret key generated once into ``var/``. Production sets the variables listed in
``.env.example``. A bad value stops the process at start with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from qfexdash.env import env_bool, env_float, env_int, env_list, env_networks, env_origins, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

# Where local state lives when nothing else is configured: SQLite file, generated keys.
STATE_DIR = Path(env_str("QFEXDASH_STATE_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _private_state_dir(path: Path) -> None:
    """The state folder (S27): created 0700; every file in it is created 0600 (keys, SQLite database)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)


def _private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` readable by this user only (0600) with ``content``; False when it already exists."""
    _private_state_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return True


def _local_secret_key() -> str:
    """A per-checkout random key, created on first use (0600), for running without any environment."""
    path = STATE_DIR / "secret_key"
    _private_file(path, secrets.token_urlsafe(50).encode())
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY", "")
SECRET_KEY_FROM_ENV = bool(SECRET_KEY)
if not SECRET_KEY:
    SECRET_KEY = _local_secret_key()
elif len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
# Older keys still accepted for sessions and signed values while SECRET_KEY is being rotated.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Two-factor sign-in (S30, S35): a session whose device was removed is signed out; which device verified
    # this session; then no page until it is done. Each signed-in session is noted for "Your sessions".
    "orders.middleware.SecondFactorGoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "orders.middleware.TwoFactorMiddleware",
    "orders.middleware.BrowserSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The person's time zone for every page (and the admin); their theme and columns for the templates.
    "orders.middleware.PreferenceMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy (S28); the next one adds the page's WebSocket origin and no-store.
    "csp.middleware.CSPMiddleware",
    "orders.middleware.PrivatePagesMiddleware",
    # Last, as django-axes requires: turns a locked-out sign-in into the 429 page (orders.signin.throttle).
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out sign-in before the password is checked (S25).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "qfexdash.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "orders.accounts.preferences.display",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "qfexdash.asgi.application"

_DEFAULT_DATABASE_URL = f"sqlite:///{STATE_DIR / 'db.sqlite3'}"
_database_url = env_str("DATABASE_URL", _DEFAULT_DATABASE_URL)
try:
    _database = dj_database_url.parse(_database_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
except ValueError as exc:  # unknown scheme or malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL this project understands: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    if _database["NAME"] != ":memory:":
        # Created 0600 before SQLite opens it (SQLite gives its journal files the database's mode).
        _private_file(Path(_database["NAME"]))
    _database["CONN_MAX_AGE"] = 0
    _database.setdefault("OPTIONS", {})["timeout"] = 20
    # SQLite ignores select_for_update: a transaction that checks, then writes (the last admin of a team, a
    # one-time code) must hold the write lock from its first read, or two processes both pass the check.
    # IMMEDIATE makes every transaction wait for the one before it (item 7 of issue 20, tests/cluster/test_races.py).
    _database["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
# Every Redis key of this site (channel layer, feed leases, shared state) starts with this, so several
# sites or test runs can share one Redis.
QFEXDASH_REDIS_PREFIX = env_str("QFEXDASH_REDIS_PREFIX", "qfexdash")
if not QFEXDASH_REDIS_PREFIX or not QFEXDASH_REDIS_PREFIX.replace("-", "").replace("_", "").isalnum():
    raise ImproperlyConfigured("QFEXDASH_REDIS_PREFIX must be letters, digits, '-' or '_'.")
# Group memberships of the channel layer expire after this; live sockets and feeds renew theirs every
# 10 minutes, so only those of dead processes lapse (docs/deployment.md, "Channel layer").
CHANNEL_LAYER_GROUP_EXPIRY = 3600
if REDIS_URL:
    env_url("REDIS_URL", REDIS_URL, ("redis", "rediss", "unix"))
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # No read timeout: redis-py 8's default (5 s) ends channels_redis's 5 s blocking wait just
                # as Redis answers "nothing yet", and any read timeout can swallow the cancellation of a
                # closing socket's receive, which then holds the layer's receive lock for good. Dead
                # connections are found by TCP keepalive instead.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                    }
                ],
                "prefix": f"{QFEXDASH_REDIS_PREFIX}:asgi",
                # A viewer that falls this far behind loses messages; the seq gap heals it with a snapshot.
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 200, minimum=10),
                "expiry": env_int("CHANNEL_LAYER_EXPIRY", 30, minimum=5),
                "group_expiry": CHANNEL_LAYER_GROUP_EXPIRY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer, but its expiry sweep runs once a second instead of on every
            # receive (see qfexdash/channel_layers.py): fan-out to many sockets stays linear.
            "BACKEND": "qfexdash.channel_layers.SweepingInMemoryChannelLayer",
            "CONFIG": {
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 200, minimum=10),
                "expiry": 30,
                "group_expiry": CHANNEL_LAYER_GROUP_EXPIRY,
            },
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (S25, S38, django-axes; orders/signin/throttle.py): counters in the database, shared by
# every process. Locked out: one username from one address, and one address whatever usernames it tries; a
# username tried from many addresses is slowed (a growing, capped wait), never locked, so nobody can lock a
# victim out from elsewhere.
QFEXDASH_LOGIN_MAX_FAILURES = env_int("QFEXDASH_LOGIN_MAX_FAILURES", 5, minimum=1)
QFEXDASH_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("QFEXDASH_LOGIN_MAX_FAILURES_PER_ADDRESS", 20, minimum=1)
QFEXDASH_LOGIN_LOCKOUT_SECONDS = env_int("QFEXDASH_LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS = env_int("QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS", 60, minimum=1, maximum=3600)
# IPv6 clients are counted by this network prefix: one host usually holds a whole /64.
QFEXDASH_LOGIN_IPV6_PREFIX = env_int("QFEXDASH_LOGIN_IPV6_PREFIX", 64, minimum=32, maximum=128)
# Reverse proxies in front of the site that append to X-Forwarded-For (0: use REMOTE_ADDR as it is).
QFEXDASH_TRUSTED_PROXIES = env_int("QFEXDASH_TRUSTED_PROXIES", 0, minimum=0, maximum=5)
AXES_FAILURE_LIMIT = QFEXDASH_LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=QFEXDASH_LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt is not counted again: retrying during a wait does not push the wait further away.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "orders.signin.throttle.SignInThrottle"
AXES_CLIENT_IP_CALLABLE = "orders.signin.throttle.client_address"
AXES_USERNAME_CALLABLE = "orders.signin.throttle.normalise_username"
AXES_LOCKOUT_CALLABLE = "orders.signin.throttle.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ADMIN = False  # attempts are not browsable in the admin: they name usernames and addresses
AXES_VERBOSE = False

# Two-factor sign-in (S30, django-otp) for superusers and team admins; on by default in production.
QFEXDASH_REQUIRE_2FA = env_bool("QFEXDASH_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = env_str("QFEXDASH_2FA_ISSUER", "qfexdash")

LOGIN_URL = "signin"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "signin"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True
# One time rule on every page, the admin's too: "2026-12-06 21:49:03 UTC" (qfexdash/formats/en/formats.py).
FORMAT_MODULE_PATH = ["qfexdash.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production runs collectstatic and serves compressed, hashed files; locally WhiteNoise serves
# straight from the source folders so nothing has to be collected first.
if env_bool("QFEXDASH_STATIC_MANIFEST", False):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
else:
    WHITENOISE_USE_FINDERS = True
    STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when the folder is missing
    WHITENOISE_AUTOREFRESH = DEBUG

# Security headers; production turns on the HTTPS-only ones through the environment.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Prometheus scrapes each process directly over plain HTTP on loopback (orders/live/metrics.py refuses anything
# that came through the proxy): redirecting it to HTTPS would only break the scrape.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (S28, django-csp): scripts and styles from this site only, nothing inline, no
# plugins, no framing. connect-src also gets the page's own ws(s):// origin (orders.middleware).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Sessions end after this many minutes without a page request (S28). Every page request renews the
# expiry; WebSocket traffic does not, and the live page's access re-check closes an expired session's
# sockets (4001).
QFEXDASH_SESSION_IDLE_MINUTES = env_int("QFEXDASH_SESSION_IDLE_MINUTES", 480, minimum=1, maximum=60 * 24 * 14)
SESSION_COOKIE_AGE = QFEXDASH_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True

# --- qfexdash ---------------------------------------------------------------------------------

# Encryption keys for stored API secrets: comma-separated Fernet keys, the first encrypts, all
# decrypt. Never derived from SECRET_KEY. Validated by a system check (orders.checks).
QFEXDASH_ENCRYPTION_KEYS = env_list("QFEXDASH_ENCRYPTION_KEYS", [])

QFEX_TRADE_URL = env_url("QFEX_TRADE_URL", "wss://trade.qfex.com", ("ws", "wss"))
QFEX_UAT_TRADE_URL = env_url("QFEX_UAT_TRADE_URL", "wss://trade.qfex.io", ("ws", "wss"))
# Hosts a custom QFEX URL may name (S22): comma-separated ``host`` or ``host:port`` entries (a host alone
# allows every port; IPv6 as ``[::1]:8765``). Empty: only production and UAT. Loopback, private and
# link-local addresses are refused at connect time unless the address itself is listed.
QFEXDASH_CUSTOM_ENDPOINTS = env_list("QFEXDASH_CUSTOM_ENDPOINTS", [])
try:
    from orders.qfex.policy import EndpointPolicy

    EndpointPolicy.from_entries(QFEXDASH_CUSTOM_ENDPOINTS)
except ValueError as exc:
    raise ImproperlyConfigured(f"QFEXDASH_CUSTOM_ENDPOINTS: {exc}.") from None
# Seconds allowed for any single upstream socket operation (connect, auth, one reply).
QFEX_TIMEOUT_SECONDS = env_float("QFEX_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=120)

# Live feed (orders.live.feed): pushes are applied as they arrive; every watched account is also re-read
# in full (a reconcile) at least this often, stretched for big books to stay within the rate budget.
# TWAPs have no push channel, so this is also their refresh rate.
QFEXDASH_RECONCILE_SECONDS = env_float("QFEXDASH_RECONCILE_SECONDS", 5.0, minimum=0.5, maximum=3600)
# With several server processes (REDIS_URL): an account's upstream session belongs to the process
# holding its lease in Redis, renewed every third of this; a dead owner is replaced within about this long.
QFEXDASH_LEASE_SECONDS = env_float("QFEXDASH_LEASE_SECONDS", 6.0, minimum=1.0, maximum=300)
# Threads for upstream work (bounded; never the event loop or asgiref's shared thread).
QFEXDASH_FEED_THREADS = env_int("QFEXDASH_FEED_THREADS", 16, minimum=1, maximum=256)
# Share of QFEX's per-key rate budget (12 000 weight / 60 s) the dashboard may use (P8).
QFEXDASH_RATE_BUDGET_SHARE = env_float("QFEXDASH_RATE_BUDGET_SHARE", 0.10, minimum=0.001, maximum=1.0)
# Refresh requests within this many seconds are served by one fetch.
QFEXDASH_REFRESH_COALESCE_SECONDS = env_float("QFEXDASH_REFRESH_COALESCE_SECONDS", 0.5, minimum=0.0, maximum=60)
# How often an open browser socket re-checks that its user may still see the account.
QFEXDASH_ACCESS_RECHECK_SECONDS = env_float("QFEXDASH_ACCESS_RECHECK_SECONDS", 2.0, minimum=0.1, maximum=60)
# Reconnect backoff after upstream failures (full jitter between 0 and base * 2^n, capped).
QFEXDASH_BACKOFF_BASE_SECONDS = env_float("QFEXDASH_BACKOFF_BASE_SECONDS", 1.0, minimum=0.01, maximum=60)
QFEXDASH_BACKOFF_CAP_SECONDS = env_float("QFEXDASH_BACKOFF_CAP_SECONDS", 30.0, minimum=0.1, maximum=3600)
# A rejected API key or unreadable secret is retried only this often (or at once when it is changed).
QFEXDASH_AUTH_RETRY_SECONDS = env_float("QFEXDASH_AUTH_RETRY_SECONDS", 300.0, minimum=1, maximum=86400)
# After this many failed upstream tries in a row an account shows "error" (look at it) instead of "stale".
QFEXDASH_ERROR_AFTER_FAILURES = env_int("QFEXDASH_ERROR_AFTER_FAILURES", 5, minimum=1, maximum=1000)
# Most rows in one message to a browser; bigger snapshots go in parts, bigger diffs as several diffs,
# so no message approaches Daphne's 1 MiB WebSocket message limit.
QFEXDASH_WS_ROWS_PER_MESSAGE = env_int("QFEXDASH_WS_ROWS_PER_MESSAGE", 500, minimum=1, maximum=2000)
# Largest frame a browser may send, and how many frames per 10 s.
QFEXDASH_WS_MAX_FRAME_BYTES = env_int("QFEXDASH_WS_MAX_FRAME_BYTES", 4096, minimum=256)
QFEXDASH_WS_RATE = env_int("QFEXDASH_WS_RATE", 20, minimum=1)
# Who may read GET /metrics (Prometheus text): comma-separated CIDRs matched against REMOTE_ADDR; others
# get 404. Scrape each process directly, not through the proxy (docs/deployment.md). Empty: nobody.
QFEXDASH_METRICS_ALLOW = env_networks("QFEXDASH_METRICS_ALLOW", "127.0.0.0/8,::1/128")
# Live sockets one user may have open (per server process); the next is refused with close code 4029.
QFEXDASH_WS_MAX_SOCKETS_PER_USER = env_int("QFEXDASH_WS_MAX_SOCKETS_PER_USER", 20, minimum=1, maximum=10_000)
# Unread output a browser socket may leave waiting before it is closed (4013): a page that stopped reading.
QFEXDASH_WS_MAX_BACKLOG_BYTES = env_int(
    "QFEXDASH_WS_MAX_BACKLOG_BYTES", 8 * 1024 * 1024, minimum=64 * 1024, maximum=1024 * 1024 * 1024
)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # websocket-client's trace output would print the auth frame; keep its logger quiet.
    "loggers": {
        "websocket": {"level": "WARNING"},
        # One line per simulator connection is noise in the demo; keep its warnings.
        "orders.simulator.websockets": {"level": "WARNING"},
    },
}
