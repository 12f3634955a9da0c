FROM alpine:3.19
USER <<INVALID
RUN <<EMPTY
EMPTY
RUN 3<<EMPTY2
EMPTY2
RUN "<<NOHEREDOC"
RUN <<COMMENT
# internal comment
echo hello world # trailing comment
COMMENT
COPY <<X <<Y /dest
Y
X
X
Y
COPY <<file.txt /dest
hello world
file.txt
RUN <<eo'f'
echo foo
eof
RUN <<eo\'f
echo foo
eo'f
RUN <<'e'o\'f
echo foo
eo'f
RUN <<'one two'
echo bar
one two
RUN <<$EOF
$EOF
RUN <<  EOF
EOF
RUN <<  EOF  > foo
EOF
COPY << EOF /spaced
spaced
EOF
RUN <<""
