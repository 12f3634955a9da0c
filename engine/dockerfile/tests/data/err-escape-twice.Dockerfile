# escape=`
# escape=\
FROM debian:12
