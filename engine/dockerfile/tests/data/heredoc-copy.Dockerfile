FROM busybox
COPY <<EOF /etc/motd
Welcome, ${USER}!
EOF
COPY <<FILE1 <<FILE2 /dest/
first file
FILE1
second file
FILE2
COPY --chmod=755 <<"EOF" /usr/local/bin/hello
#!/bin/sh
echo "$1"
EOF
COPY plain.txt <<-EOF /dest/
	tab-indented
	EOF
ADD <<EOF /added.txt
added
EOF
