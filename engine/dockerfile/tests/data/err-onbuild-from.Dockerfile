FROM debian:12
ONBUILD FROM busybox
