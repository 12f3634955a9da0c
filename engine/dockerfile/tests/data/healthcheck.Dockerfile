FROM busybox
HEALTHCHECK NONE
FROM busybox
HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 \
  CMD ["curl", "-f", "http://localhost/"]
FROM busybox
healthcheck cmd wget -q -O- http://localhost:8080/health
FROM busybox
HEALTHCHECK --interval=0s --retries=0 CMD true
