FROM debian:12
COPY /a <<EOF
x
EOF
