FROM scratch
VOLUME /var/lib/mysql
STOPSIGNAL 9
USER nobody:nogroup
WORKDIR /a
WORKDIR b c
SHELL ["powershell", "-command"]
EXPOSE 80/tcp 443
CMD echo "shell form" && sleep 1
