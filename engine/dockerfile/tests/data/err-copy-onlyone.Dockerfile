FROM debian:12
COPY onlyone
