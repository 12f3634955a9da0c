FROM debian:12
COPY --chown /a /b
