# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cskpi ./cskpi
COPY ingestion ./ingestion
COPY metrics ./metrics
RUN python -m venv /venv && /venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=cskpi.settings PORT=8000 DJANGO_DEBUG=false
RUN useradd --system --uid 10001 --home-dir /app cskpi
WORKDIR /app
COPY --from=build /venv /venv
COPY --chown=cskpi:cskpi manage.py ./
COPY --chown=cskpi:cskpi cskpi ./cskpi
COPY --chown=cskpi:cskpi ingestion ./ingestion
COPY --chown=cskpi:cskpi metrics ./metrics
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput && chown -R cskpi:cskpi /app
USER cskpi
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/api/v1/health',timeout=4)"
# The same image runs the worker (`celery -A cskpi worker`) and beat (`celery -A cskpi beat`).
CMD ["sh", "-c", "python manage.py check --deploy --fail-level WARNING && exec gunicorn -c python:cskpi.gunicorn_conf cskpi.wsgi:application --bind 0.0.0.0:${PORT}"]
