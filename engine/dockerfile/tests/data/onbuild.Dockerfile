FROM busybox
ONBUILD ADD . /app/src
ONBUILD RUN cd /app/src && make
onbuild env A=1
ONBUILD RUN <<EOF
echo heredoc in a trigger
EOF
