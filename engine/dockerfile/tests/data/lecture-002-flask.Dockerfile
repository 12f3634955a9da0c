# Lecture 002 shows its sample Dockerfile only as a picture; this is the file its bullet
# list describes, line for line (FROM ubuntu:18.04, WORKDIR, COPY, RUN pip, EXPOSE 5000, CMD).
FROM ubuntu:18.04
WORKDIR /app
COPY . /app
RUN pip install -r requirements.txt
EXPOSE 5000
CMD ["python", "app.py"]
