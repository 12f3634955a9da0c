FROM busybox
RUN echo a \
  b
COPY <<EOF /x
body
EOF
CMD ["sh"]
