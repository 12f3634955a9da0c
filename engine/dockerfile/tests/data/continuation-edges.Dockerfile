FROM busybox
RUN echo ends with an escaped backslash \\
RUN echo next
RUN \

  echo only continuation lines
RUN echo file ends mid-instruction \