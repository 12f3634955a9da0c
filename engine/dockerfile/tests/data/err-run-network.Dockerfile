FROM debian:12
RUN --network=bridge true
