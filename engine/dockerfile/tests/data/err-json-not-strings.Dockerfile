FROM debian:12
CMD ["echo", 1]
