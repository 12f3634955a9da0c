FROM python:3.12-slim AS base
LABEL org.opencontainers.image.source="https://example.com/app" \
      org.opencontainers.image.description="A Flask app"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=off
ARG UID=10001
RUN adduser \
    --disabled-password \
    --gecos "" \
    --home "/nonexistent" \
    --shell "/sbin/nologin" \
    --no-create-home \
    --uid "${UID}" \
    appuser
WORKDIR /app
COPY --link requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip install -r requirements.txt
COPY --chown=appuser:appuser --exclude=tests/ --exclude=*.md . .
COPY <<-"EOF" /app/gunicorn.conf.py
	bind = "0.0.0.0:8000"
	workers = 2
	EOF
USER appuser
VOLUME ["/app/data"]
STOPSIGNAL SIGINT
EXPOSE 8000
ENTRYPOINT ["gunicorn", "-c", "/app/gunicorn.conf.py"]
CMD ["app:app"]
