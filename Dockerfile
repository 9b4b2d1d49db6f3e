# Session Observatory: one image for web (gunicorn), the Celery worker and beat.
# docker-compose.yml runs it against PostgreSQL, MongoDB and Redis (docs/OPERATIONS.md).
FROM python:3.11-slim

# The code runs from /app (PYTHONPATH), where settings find templates/ and static/ beside
# config/ (BASE_DIR). DATA_DIR only holds collected static files and beat's schedule here: the
# data lives in PostgreSQL and MongoDB, the queue in Redis. XDG_RUNTIME_DIR: where gunicorn 25+
# puts its control socket (the default, ~/.gunicorn, is not writable for the app user).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    DATA_DIR=/app/var \
    PYTHONPATH=/app \
    XDG_RUNTIME_DIR=/tmp

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# Dependencies first, from pyproject.toml alone, so this layer stays cached while only the code
# changes: `pip install .` over empty package folders installs every dependency, then the empty
# project itself is removed again. psycopg[binary] and the other dependencies ship wheels, so
# no compiler is needed.
COPY pyproject.toml README.md ./
RUN mkdir -p config sessions_api dashboard workers \
    && pip install . \
    && pip uninstall --yes session-observatory \
    && rm -rf build ./*.egg-info

COPY . .
# Static files at build time; WhiteNoise serves them from STATIC_ROOT (DATA_DIR/staticfiles).
# collectstatic needs settings, not a database or a secret: it runs on the dev defaults.
RUN DJANGO_DEBUG=1 python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var/run \
    && chown -R app:app /app/var

USER app
EXPOSE 8000

# The same server as docker-compose.yml's web service (which overrides this command).
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", \
     "--timeout", "60", "--graceful-timeout", "20", "--keep-alive", "5", \
     "--max-requests", "5000", "--max-requests-jitter", "500", \
     "--worker-tmp-dir", "/dev/shm", "--error-logfile", "-"]
