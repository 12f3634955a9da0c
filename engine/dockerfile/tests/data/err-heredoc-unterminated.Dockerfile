FROM debian:12
RUN <<EOF
echo never ends
EOFX
