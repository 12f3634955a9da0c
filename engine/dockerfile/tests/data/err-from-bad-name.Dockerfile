FROM debian:12 AS 1stage
