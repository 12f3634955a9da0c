FROM debian:12
ARG =x
