FROM debian:12
HEALTHCHECK NONE --interval=5s
