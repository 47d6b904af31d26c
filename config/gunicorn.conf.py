"""gunicorn settings (`gunicorn -c config/gunicorn.conf.py config.wsgi`; `make run` uses it).

The access log leaves out what identifies people: no query string (`?user=`, `?q=`,
`?email=`), no referrer (which carries them too), no HTTP basic-auth user; the path is kept
and, like every gunicorn log line, goes through config.log_masking, which masks user UUIDs,
emails and tokens (seed 003).

Workers: `gthread`, sized to the machine (docs/performance.md): one process per core plus one
(a request's CPU is split between Python and PostgreSQL on the same host) and 4 threads each
(a thread waits on the database most of the time). GUNICORN_WORKERS / GUNICORN_THREADS
override both; a `--workers` on the command line wins over this file.
"""

import os


def _positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return number


worker_class = "gthread"
workers = _positive_int("GUNICORN_WORKERS", (os.cpu_count() or 1) + 1)
threads = _positive_int("GUNICORN_THREADS", 4)

accesslog = "-"
# remote address, time, method, path (no query string), protocol, status, bytes, duration,
# user agent
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_identifiers": {"()": "config.log_masking.MaskIdentifiers"}},
    "formatters": {
        "access": {"format": "%(message)s"},
        "generic": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        },
    },
    "handlers": {
        "access": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "access",
            "filters": ["mask_identifiers"],
        },
        "error": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "generic",
            "filters": ["mask_identifiers"],
        },
    },
    "root": {"level": "INFO", "handlers": ["error"]},
    "loggers": {
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
    },
}
