# syntax=docker/dockerfile:1.7
# ESCAPE = \
FROM busybox
RUN echo a \
    b
