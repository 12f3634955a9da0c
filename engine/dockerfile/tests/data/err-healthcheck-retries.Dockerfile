FROM debian:12
HEALTHCHECK --retries=-1 CMD true
