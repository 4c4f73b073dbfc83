"""QuiltWeb settings: one file, driven by the environment.

Everything a deployment changes comes from an environment variable with a safe local default:
SQLite in WAL mode and an in-memory channel layer for one machine; DATABASE_URL and REDIS_URL
when there is more than one process that must share them.
"""

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("QUILTWEB_STATE_DIR", BASE_DIR / ".state"))
STATE_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _secret_key() -> str:
    """A key from the environment, else one generated once and kept in the state directory."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = STATE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# QUILTWEB_SECURE=1: the site is served over HTTPS only, normally behind a TLS-terminating proxy
# (README "Serving behind TLS"). `manage.py check --deploy --fail-level WARNING` passes with it.
SECURE = env_bool("QUILTWEB_SECURE", False)
DEBUG = False if SECURE else env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "template_partials",
    "apps.core",
    "apps.engine",
    "apps.accounts",
    "apps.events",
    "apps.operations",
    "apps.containers",
    "apps.health",
    "apps.snapshots",
    "apps.volumes",
    "apps.network",
    "apps.images",
    "apps.engines",
    "apps.workloads",
    "apps.terminals",
    "apps.activity",
    "apps.functions",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    # Outermost but one, so pages made by the middleware below (login redirects, the
    # engine-down page, error pages) carry the policy too.
    "apps.core.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.ApiKeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.accounts.idle.IdleTimeoutMiddleware",
    "apps.core.middleware.LoginRequiredMiddleware",
    # After sign-in is settled: scopes the actor to a viewed tenant (2.14) and audits it.
    "apps.accounts.viewas.ViewTenantMiddleware",
    # A view's exception becomes its page in the request's thread (see the class). Exception
    # hooks run innermost first, so the engine-down page below answers before it.
    "apps.core.middleware.ErrorResponseMiddleware",
    "apps.health.middleware.EngineDownMiddleware",
]

ROOT_URLCONF = "quiltweb.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "quiltweb.asgi.application"

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
                "quiltweb.context_processors.shell",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# SQLite is the embedded default. WAL, a busy timeout and IMMEDIATE write transactions let the
# web server and the worker write one file without "database is locked" (docs/engine-facts.md).
SQLITE_PATH = Path(os.environ.get("QUILTWEB_DB", STATE_DIR / "quiltweb.sqlite3"))
# Seconds a thread keeps its database connection. The worker's threads live as long as it does
# and keep theirs; quiltweb/asgi.py sets 0 for the web server, where every request runs in a
# thread of its own and a kept connection is never used again (Django's docs: no persistent
# connections under ASGI): it stayed open until the garbage collector found it, a few hundred
# descriptors after a busy minute.
QUILTWEB_DB_CONN_MAX_AGE = env_int("QUILTWEB_DB_CONN_MAX_AGE", 60)
if os.environ.get("DATABASE_URL"):
    # Persistent connections are checked before a request (or a worker pass) reuses them: after
    # the server restarted, the first query reconnects instead of failing on a dead socket.
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"],
            conn_max_age=QUILTWEB_DB_CONN_MAX_AGE,
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend that also waits out shared-cache table locks (tests).
            "ENGINE": "apps.core.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            # Tests: an in-memory database per test process. Said outright so that pytest-xdist
            # workers keep it in memory instead of deriving a file name from the path above.
            "TEST": {"NAME": ":memory:"},
            # The worker polls 20 times a second: it does not reopen the file each time.
            "CONN_MAX_AGE": QUILTWEB_DB_CONN_MAX_AGE,
            "OPTIONS": {
                # recursive_triggers: a REPLACE that deletes a row then fires DELETE triggers,
                # so the audit guard also sees rows a REPLACE would drop (migration 0004's
                # trigger refuses the common case on every connection, this one is defence in
                # depth for ours).
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA recursive_triggers=ON;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "containers:root"
LOGOUT_REDIRECT_URL = "login"
# A signed-in session lasts 8 h from sign-in at most and ends after 30 min without activity
# (apps.accounts.idle says what counts as activity).
SESSION_COOKIE_AGE = env_int("QUILTWEB_SESSION_HOURS", 8) * 3600
QUILTWEB_SESSION_IDLE_SECONDS = env_int("QUILTWEB_SESSION_IDLE_MINUTES", 30) * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# How many reverse proxies we trust in front of us: they set X-Forwarded-Proto, and the audit
# log's client address is the X-Forwarded-For entry the outermost of them appended. 0: none, the
# client address is the socket's peer and X-Forwarded-* headers are ignored.
QUILTWEB_PROXY_HOPS = env_int("QUILTWEB_PROXY_HOPS", 1 if SECURE else 0)
SILENCED_SYSTEM_CHECKS: list[str] = []
if SECURE:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # A load balancer's plain-HTTP health probe must not be sent to HTTPS.
    SECURE_REDIRECT_EXEMPT = [r"^health$"]
    SECURE_HSTS_SECONDS = env_int("QUILTWEB_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("QUILTWEB_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("QUILTWEB_HSTS_PRELOAD", False)
    if QUILTWEB_PROXY_HOPS > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
        # W005: the operator turned subdomains off on purpose (other hosts under this domain
        # still serve plain HTTP); the check cannot know that.
        SILENCED_SYSTEM_CHECKS.append("security.W005")
    if not SECURE_HSTS_PRELOAD:
        # W021: preloading puts the domain in browsers' built-in lists, which is hard to undo and
        # covers every subdomain; it is the domain owner's decision (QUILTWEB_HSTS_PRELOAD=1).
        SILENCED_SYSTEM_CHECKS.append("security.W021")
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024 + 1024 * 1024  # the API's 32 MiB plus headroom

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("QUILTWEB_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/xterm", BASE_DIR / "node_modules" / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", BASE_DIR / "node_modules" / "@xterm" / "addon-fit"),
    ("vendor/asciinema-player", BASE_DIR / "node_modules" / "asciinema-player" / "dist" / "bundle"),
]
WHITENOISE_USE_FINDERS = True  # serve straight from the finders when collectstatic has not run

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No log line shows a `token=` or `ticket=` value (apps.core.redact).
    "filters": {"redact": {"()": "apps.core.redact.RedactFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Error reports (debug page, admin mail) hide `token=`/`ticket=` values too (apps.core.redact).
DEFAULT_EXCEPTION_REPORTER = "apps.core.redact.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.redact.RedactingReporterFilter"

# QuiltWeb's own settings.
QUILTWEB_VERSION = "0.1.0"
QUILTWEB_DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
QUILTWEB_ENGINE_NAME = os.environ.get("QUILTWEB_ENGINE_NAME", "local")
QUILTWEB_ENGINE_TIMEOUT = float(os.environ.get("QUILTWEB_ENGINE_TIMEOUT", "30"))
QUILTWEB_BASE_IMAGE = "quilt/base"
QUILTWEB_NETWORK = os.environ.get("QUILTWEB_NETWORK", "quiltweb")
# A registry every engine reaches (host:port): clones and forks to another engine move their
# image through it (push, pull) instead of streaming docker save into docker load
# (docs/engines.md). Empty: the stream.
QUILTWEB_REGISTRY = os.environ.get("QUILTWEB_REGISTRY", "").strip()
QUILTWEB_LABEL_PREFIX = "io.quiltweb."
QUILTWEB_ENGINE_RETRY_AFTER = 5
# Every container QuiltWeb creates logs to a bounded json-file log: this size (Docker's units,
# e.g. 10m) per file, three files; a chatty container can no longer fill the engine's disk.
QUILTWEB_LOG_MAX_SIZE = os.environ.get("QUILTWEB_LOG_MAX_SIZE", "10m").strip() or "10m"
if not re.fullmatch(r"[1-9][0-9]*[kmg]?", QUILTWEB_LOG_MAX_SIZE):
    # Docker would refuse every create with it; say so at start-up instead.
    raise ImproperlyConfigured("QUILTWEB_LOG_MAX_SIZE must look like 10m (a number, k, m or g)")
QUILTWEB_LOG_MAX_FILES = 3
QUILTWEB_TERMINAL_PER_USER = env_int("QUILTWEB_TERMINAL_PER_USER", 10)
QUILTWEB_TERMINAL_GLOBAL = env_int("QUILTWEB_TERMINAL_GLOBAL", 200)
QUILTWEB_TERMINAL_GRACE_SECONDS = env_int("QUILTWEB_TERMINAL_GRACE_SECONDS", 300)
QUILTWEB_TERMINAL_IDLE_SECONDS = env_int("QUILTWEB_TERMINAL_IDLE_SECONDS", 1800)
QUILTWEB_TERMINAL_RECORD = env_bool("QUILTWEB_TERMINAL_RECORD", False)
# How long a finished operation stays listed in the operations tray (the browser tests shorten
# it so an emptied tray is seen in seconds, not half a minute).
QUILTWEB_TRAY_RECENT_SECONDS = env_int("QUILTWEB_TRAY_RECENT_SECONDS", 30)
QUILTWEB_PAGE_SIZE = 50
# The cycle collector's first threshold while a request builds a large list (apps.core.gcpause;
# CPython's default is 700 and stays in force elsewhere); 0 leaves it alone.
QUILTWEB_LIST_GC_THRESHOLD = int(os.environ.get("QUILTWEB_LIST_GC_THRESHOLD", "20000"))
# Every engine object this deployment makes carries io.quiltweb.instance=<this>, so two
# deployments (or a test run) on one engine never touch each other's containers.
QUILTWEB_INSTANCE = os.environ.get("QUILTWEB_INSTANCE", "default")
# Origins, besides this site's own, that may open websockets (exact scheme://host:port).
QUILTWEB_WS_EXTRA_ORIGINS = [o for o in os.environ.get("QUILTWEB_WS_ORIGINS", "").split(",") if o]
# How long an API key's resolution (key, user, role, tenant) is reused in-process. Saving a key,
# user, profile or tenant clears it here at once; other processes catch up within this TTL.
QUILTWEB_API_KEY_CACHE_SECONDS = float(os.environ.get("QUILTWEB_API_KEY_CACHE_SECONDS", "5"))
# Credentials (issue #15, sec/auth): API keys expire this many days after creation unless an
# admin asks for a key that never expires; tickets (the browser's one-time URL credential) live
# this many seconds.
QUILTWEB_API_KEY_DEFAULT_DAYS = env_int("QUILTWEB_API_KEY_DEFAULT_DAYS", 90)
QUILTWEB_TICKET_SECONDS = env_int("QUILTWEB_TICKET_SECONDS", 60)
# Brute-force throttles (apps.accounts.throttle): failures allowed per fixed window, and the
# window in seconds. Sign-ins per account and per client address, bad API keys per client.
# Failed sign-ins per window for one account from one client address (IPv6: its /64) ...
QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT = env_int("QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT", 5)
# ... for one account from all addresses together (the backstop for distributed guessing) ...
QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT_ALL = env_int("QUILTWEB_LOGIN_FAILURES_PER_ACCOUNT_ALL", 100)
# ... and for one client address across all accounts.
QUILTWEB_LOGIN_FAILURES_PER_CLIENT = env_int("QUILTWEB_LOGIN_FAILURES_PER_CLIENT", 20)
QUILTWEB_LOGIN_WINDOW_SECONDS = env_int("QUILTWEB_LOGIN_WINDOW_SECONDS", 15 * 60)
QUILTWEB_API_KEY_FAILURES_PER_CLIENT = env_int("QUILTWEB_API_KEY_FAILURES_PER_CLIENT", 20)
QUILTWEB_API_KEY_WINDOW_SECONDS = env_int("QUILTWEB_API_KEY_WINDOW_SECONDS", 60)
# Pages read the user's profile on every request, so the session's user comes with it. Django's
# own backend stays listed so sessions it signed in keep working.
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.ProfileModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]
