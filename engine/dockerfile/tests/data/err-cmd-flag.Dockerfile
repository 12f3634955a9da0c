FROM debian:12
CMD --help
