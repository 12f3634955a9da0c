# This comment ends the directive section.
# escape=`
FROM busybox
RUN echo "backslash still continues" \
    && echo done
