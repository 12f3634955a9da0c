FROM busybox
COPY --chown=app:app --chmod=0644 --link a.txt b.txt /dest/
COPY --exclude=*.tmp --exclude="**/*.log" src/ /src/
COPY --link=false x /x
COPY ["file with spaces.txt", "another file.txt", "/dest dir/"]
COPY --parents ./a/b/c.txt /out/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar /a.tar
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit
ADD --chown=1000 *.tar.gz /opt/
