FROM debian:12
RUN --security=insecure true
