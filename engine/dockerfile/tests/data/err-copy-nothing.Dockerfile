FROM debian:12
COPY --from=x
