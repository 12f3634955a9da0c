FROM busybox
ENV k=v k2="v 2" k3='single $quoted' k4=a\ b
ENV LEGACY value with spaces
ENV EMPTY=
ENV MULTI=one \
    OTHER=two
LABEL "com.example.vendor"="ACME Incorporated" com.example.label-with-value="foo"
LABEL description="This text illustrates \
that label-values can span multiple lines."
