from alpine:3.19 as Builder
run echo hello
Copy --from=builder /a /b
workdir /tmp
cmd echo done
