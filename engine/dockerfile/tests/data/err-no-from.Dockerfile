# only a comment
ARG X=1

