# comment
COPY . /app
FROM debian:12
