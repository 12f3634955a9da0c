FROM debian:12
COPY --link=maybe /a /b
