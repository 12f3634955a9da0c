FROM busybox
CMD [bad json
RUN ["echo", 'single quotes are not JSON']
ENTRYPOINT ["/bin/sh", "-c", "echo \"quoted\" \u00e9"]
CMD []
RUN [ "echo", "spaces around" ]  
VOLUME ["/var/lib/data", "/var/log"]
VOLUME [/not-json]
