FROM debian:12
ADD --from=a /a /b
