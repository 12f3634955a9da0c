# syntax=docker/dockerfile:1
FROM debian:12
RUN <<EOF
apt-get update
apt-get install -y curl
EOF
RUN <<-EOT
	echo "tabs are stripped"
		echo "every leading tab"
	EOT
RUN <<"EOF"
echo "$HOME is not expanded by the parser"
EOF
RUN <<'EOF' bash
echo single-quoted name
EOF
RUN <<FILE1 cat > /file1 && <<FILE2 cat > /file2
I am
first
FILE1
I am
second
FILE2
RUN --mount=type=cache,target=/var/cache/apt <<EOF
echo with a mount
EOF
RUN python3 <<EOF
#!/usr/bin/env python3
print("# not a comment inside a heredoc")

EOF
RUN echo "<<NOTAHEREDOC"
RUN ["cat", "<<NOTAHEREDOC"]
RUN cat<<NOTAHEREDOC
