FROM debian:12

# A comment line on its own.
RUN apt-get update \
    # a comment inside a continued instruction is dropped
    && apt-get install -y \
        curl \

        git \
    && rm -rf /var/lib/apt/lists/*

  # indented comment
   RUN echo "indented instruction"
RUN echo one \
	&& echo two
ENV A=1 \
    B=2
