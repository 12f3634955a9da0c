FROM debian:12
ENV =x
