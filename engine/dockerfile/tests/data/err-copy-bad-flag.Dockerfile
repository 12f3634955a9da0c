FROM debian:12
COPY --frm=build /a /b
