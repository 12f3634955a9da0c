FROM debian:12
RUN
