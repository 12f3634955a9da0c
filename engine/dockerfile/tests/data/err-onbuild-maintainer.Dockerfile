FROM debian:12
ONBUILD maintainer me
