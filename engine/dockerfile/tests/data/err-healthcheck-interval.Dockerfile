FROM debian:12
HEALTHCHECK --interval=5 CMD true
