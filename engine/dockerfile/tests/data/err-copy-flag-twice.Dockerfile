FROM debian:12
COPY --from=a --from=b /a /b
