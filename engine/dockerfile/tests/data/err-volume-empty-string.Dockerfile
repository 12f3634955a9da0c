FROM debian:12
VOLUME ["/a", ""]
