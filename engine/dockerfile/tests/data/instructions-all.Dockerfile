FROM debian:12
LABEL org.opencontainers.image.title="demo app" version=1.0
MAINTAINER Jane Doe <jane@example.com>
ENV APP_HOME=/srv/app PATH="/srv/app/bin:$PATH"
ARG USER_ID=1000
WORKDIR $APP_HOME
RUN apt-get update && apt-get install -y curl
COPY app.py requirements.txt ./
ADD https://example.com/data.tar.gz /tmp/
USER ${USER_ID}:1000
EXPOSE 8080 53/udp ${EXTRA_PORT}
VOLUME /data /logs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
ONBUILD COPY . /srv/app
ENTRYPOINT ["/srv/app/bin/start"]
CMD ["--port", "8080"]
