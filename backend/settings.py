"""Settings for つなぐ, read from the environment (django-environ).

TSUNAGU_ENV selects the profile:
- ``development`` (default): safe local defaults, the project-local PostGIS cluster from ``make run``.
- ``test``: like development, with background tasks run inline and a fast password hasher.
- ``production``: refuses to start without SECRET_KEY, DATABASE_URL and ALLOWED_HOSTS, and turns on
  the HTTPS/cookie hardening that ``manage.py check --deploy`` asks for.
"""

from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

TSUNAGU_ENV = env.str("TSUNAGU_ENV", default="development")
if TSUNAGU_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"TSUNAGU_ENV must be development, test or production, not {TSUNAGU_ENV!r}")
PRODUCTION = TSUNAGU_ENV == "production"
TESTING = TSUNAGU_ENV == "test"

if PRODUCTION:
    _missing = [
        name
        for name in ("SECRET_KEY", "DATABASE_URL", "DATABASE_OWNER_URL", "ALLOWED_HOSTS")
        if not env.str(name, default="")
    ]
    if _missing:
        raise ImproperlyConfigured(
            "production settings need these environment variables: " + ", ".join(_missing)
        )

# Local default for development only; production demands its own (checked above).
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-5d0c1f9e-never-use-in-production")
# Off unless asked for (`DEBUG=1 make run`, or `make run DEBUG=1`): `make run` serves as production
# would (a query log per request and technical error pages are for development by hand).
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Two database roles (README "Database roles"): the web server and the job cluster connect as the
# application's role (DATABASE_URL: no superuser, owns nothing, no BYPASSRLS), schema work
# (migrate, createcachetable, backups) as the owner's (DATABASE_OWNER_URL, the `owner` alias).
# The project-local cluster started by `make run` / `make test` (scripts/pg.sh) has both.
_LOCAL_PG_PORT = env.int("TSUNAGU_PG_PORT", default=54329)
_LOCAL_PG = f"127.0.0.1:{_LOCAL_PG_PORT}/tsunagu"
_OWNER_URL = env.str("DATABASE_OWNER_URL", default=f"postgis://tsunagu_owner@{_LOCAL_PG}")
# The test suite connects as the owner, who builds the test databases and the fixtures; every
# request and job still runs as the application's role (backend.tenancy does SET ROLE).
_APP_URL = env.str("DATABASE_URL", default=_OWNER_URL if TESTING else f"postgis://tsunagu_app@{_LOCAL_PG}")
DATABASES = {"default": env.db_url_config(_APP_URL), "owner": env.db_url_config(_OWNER_URL)}
for _alias, _db in DATABASES.items():
    _db["ENGINE"] = "django.contrib.gis.db.backends.postgis"
    # Persistent connections (README "make run serves as production would"): one per gunicorn
    # worker (sync workers, one request at a time), checked before each request's first query.
    # Opening one costs ~18 ms (connection plus PostGIS's first call) against ~0.2 ms for the token
    # check itself. The tests open and close their own (0). backend.tenancy keeps the tenant on the
    # connection and rls.middleware returns it to the outside values when each request ends.
    _db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0 if TESTING else 600))
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
    # pgtrigger's triggers (history, change_seq, append-only) first read `pgtrigger.ignore`; unset,
    # the read raises and is caught in a PL/pgSQL exception block, per row and trigger, which made a
    # 100,000-row import 18 times slower. An empty list ignores nothing and takes the plain path, and
    # it is what `pgtrigger.ignore()` resets the setting to when it is done.
    _db["OPTIONS"].setdefault("options", "-c pgtrigger.ignore={}")
    # Statements run through backend.db.prepared_cursor (a tile's version, a cached tile, the token
    # check) are prepared on their first use and kept for the connection's life; Django's own
    # cursors bind client-side and are never prepared. Off (DB_PREPARED_STATEMENTS=false) behind a
    # pooler that cannot carry prepared statements (PgBouncer before 1.21 in transaction mode).
    _db["OPTIONS"].setdefault("prepare_threshold", 0 if env.bool("DB_PREPARED_STATEMENTS", default=True) else None)
# Tests: one test database, reached through both aliases.
DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
# The role requests and jobs act as (tenancy.scope does SET ROLE to it): the application's login
# role, which is also DATABASE_URL's user outside the test profile.
TSUNAGU_DB_APP_ROLE = env.str(
    "TSUNAGU_DB_APP_ROLE", default="tsunagu_app" if TESTING else (DATABASES["default"].get("USER") or "tsunagu_app")
)

if env.str("GDAL_LIBRARY_PATH", default=""):
    GDAL_LIBRARY_PATH = env.str("GDAL_LIBRARY_PATH")
if env.str("GEOS_LIBRARY_PATH", default=""):
    GEOS_LIBRARY_PATH = env.str("GEOS_LIBRARY_PATH")

INSTALLED_APPS = [
    # Database roles' privileges and row-level security, installed after every migrate; first, so
    # that its migrate/createcachetable/createsuperuser (as the owner / the platform) win.
    "rls",
    # The admin, for platform operators only (backend/admin_site.py).
    "backend.admin_apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "pgtrigger",
    "pghistory",
    "axes",
    "django_q",
    "ninja",
    "neighborhoods",
    "visits",
    "outreach",
    "accounts",
    "audit",
    "maps",
    "reports",
    "addresses",
    "onboarding",
    "demo",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "api.middleware.ApiJsonErrorsMiddleware",
    "api.middleware.ApiQueryTextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, the session's user and messages, skipped for an API request with a device token
    # (api.middleware.is_token_api_request), which never consults them. CSRF stays whole: its
    # check is a view hook that ninja's CSRF-exempt operations leave at once, and `check --deploy`
    # looks for Django's own class.
    "api.middleware.BrowserSessionMiddleware",
    # Row-level security: the request's tenant scope, from the signed-in user only (rls/).
    "rls.middleware.TenantScopeMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "api.middleware.BrowserAuthenticationMiddleware",
    "api.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # pghistory: every tracked write made during a request carries who made it.
    "api.middleware.HistoryContextMiddleware",
    # axes: must be last; turns locked-out logins of the admin into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
ASGI_APPLICATION = "backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "backend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend, looking the username up inside its own tenant scope (row-level security).
    "rls.backends.TenantScopedModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Failed logins: 5 per (username, address), then a cool-off (django-axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The reverse proxies in front of the web server (IPs or CIDRs, comma-separated). X-Forwarded-For
# is believed only from them; from anyone else it is ignored, or a client could pick the address
# its failed logins are counted against. axes and our code ask one function for the address.
TSUNAGU_TRUSTED_PROXIES = [p.strip() for p in env.list("TSUNAGU_TRUSTED_PROXIES", default=[]) if p.strip()]
for _proxy in TSUNAGU_TRUSTED_PROXIES:
    try:
        ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TSUNAGU_TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR") from None
AXES_CLIENT_IP_CALLABLE = "accounts.services.client_ip"

# Device tokens (API): opaque, stored as SHA-256, expire after this many days.
TSUNAGU_TOKEN_TTL_DAYS = env.int("TSUNAGU_TOKEN_TTL_DAYS", default=30)
# Where people reach this service: the base of the one-time set-password links (accounts/links.py).
TSUNAGU_PUBLIC_URL = env.str("TSUNAGU_PUBLIC_URL", default="http://127.0.0.1:8000")
# How long a set-password link works (Django's token generator reads PASSWORD_RESET_TIMEOUT, seconds).
PASSWORD_RESET_TIMEOUT = env.int("TSUNAGU_SET_PASSWORD_LINK_HOURS", default=72) * 3600
# The demo accounts' password (only where the demo data is loaded; never in production).
TSUNAGU_DEMO_PASSWORD = env.str("TSUNAGU_DEMO_PASSWORD", default="tsunagu-demo")

LANGUAGE_CODE = "ja"
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".local" / "static")
STATICFILES_DIRS = [BASE_DIR / "backend" / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".local" / "media")
# Uploaded files are never served from a public URL; they go through authorised endpoints.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
# Photos from the field are read as a stream with their own limit (visits.photos.service).
PHOTO_MAX_BYTES = env.int("PHOTO_MAX_BYTES", default=15 * 1024 * 1024)
# Refused with JSON in front of Django (backend/edge.py): 414 above this many bytes of URI, 431 for a
# header field (name and value) above this many bytes or more than this many fields, 413 for a
# Content-Length above DATA_UPLOAD_MAX_MEMORY_SIZE (PHOTO_MAX_BYTES for photo uploads). gunicorn's
# own limits (backend/gunicorn.conf.py) are set above these.
TSUNAGU_MAX_URI_BYTES = env.int("TSUNAGU_MAX_URI_BYTES", default=8000)
TSUNAGU_MAX_HEADER_BYTES = env.int("TSUNAGU_MAX_HEADER_BYTES", default=8192)
TSUNAGU_MAX_HEADERS = env.int("TSUNAGU_MAX_HEADERS", default=100)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache shared by web and worker processes (rate limits, the django-q2 cluster's heartbeat).
CACHES = {
    "default": env.cache_url(
        "CACHE_URL", default="dbcache://tsunagu_cache_table"
    )
}

# Background jobs: django-q2 on the ORM broker (no extra server). `retry` must exceed `timeout`,
# or a slow task would be handed to a second worker while the first still runs.
Q_CLUSTER = {
    "name": "tsunagu",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=600),
    "retry": env.int("Q_RETRY", default=720),
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 2000,
    "catch_up": False,
    "poll": 1,
    "sync": TESTING or env.bool("Q_SYNC", default=False),
}

NINJA_PAGINATION_MAX_LIMIT = 500
# A list's `count` is exact up to this many rows, then says `count_capped` (api/pagination.py): a
# count that stops here costs the same in a town of 100,000 households and one of 1.8 million.
TSUNAGU_LIST_COUNT_CAP = env.int("TSUNAGU_LIST_COUNT_CAP", default=1_000)

# Reports (reports/): counts below this are suppressed in reports meant for a wider audience (the
# supervisors' page and API, exports marked public) so that no person can be singled out.
REPORTS_SMALL_CELL_THRESHOLD = env.int("REPORTS_SMALL_CELL_THRESHOLD", default=5)
# Export files (CSV / XLSX) are kept this many hours, then deleted by the periodic sweep.
EXPORTS_EXPIRE_HOURS = env.int("EXPORTS_EXPIRE_HOURS", default=24)
EXPORTS_ROOT = env.path("EXPORTS_ROOT", default=BASE_DIR / ".local" / "exports")
# Reads write nothing worth a history context (pghistory adds it to every statement).
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# Debian 12 ships GDAL 3.6, older than the 3.9 that lets Django block file/network access from
# spatial references inside imported files. Boundary files are imported only by operators through
# a management command (never uploaded through the API), so the warning is acknowledged here.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        "django_q": {"level": "WARNING"},
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# 保存年限: how many years each kind of personal record is kept (backend/retention.py). The daily
# job (audit.tasks.retention_daily_task, 03:30 JST) purges what has expired; `manage.py retention
# --dry-run` shows what would go. Nothing of a household with an open case is ever purged.
# - case: a closed case with its contacts, meetings, plans and concerns, counted from closed_on;
# - visit: visit records and their photos, hearings and priority notes of a campaign, counted from
#   the end of the campaign's 年度 (records without a campaign: the 年度 of visited_at);
# - concern: a concern closed without ever becoming a case, counted from its closing;
# - watch: 見守り check-ins from their date, ended 見守り from ended_on;
# - meeting: 支え愛連絡会 records, counted from the end of the 年度 they were held in;
# - sync: resolved edit conflicts and applied sync operations (copies of data kept elsewhere).
_RETENTION_DEFAULTS = {"case": 5, "visit": 5, "concern": 3, "watch": 3, "meeting": 5, "sync": 1}
_RETENTION_RANGE = (1, 30)
TSUNAGU_RETENTION: dict[str, int] = {}
for _kind, _default in _RETENTION_DEFAULTS.items():
    _variable = f"TSUNAGU_RETAIN_{_kind.upper()}_YEARS"
    try:
        _years = env.int(_variable, default=_default)
    except ValueError:
        raise ImproperlyConfigured(f"{_variable} must be a whole number of years") from None
    if not _RETENTION_RANGE[0] <= _years <= _RETENTION_RANGE[1]:
        raise ImproperlyConfigured(
            f"{_variable} must be between {_RETENTION_RANGE[0]} and {_RETENTION_RANGE[1]} years, not {_years}"
        )
    TSUNAGU_RETENTION[_kind] = _years
