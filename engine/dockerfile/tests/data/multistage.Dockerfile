FROM --platform=$BUILDPLATFORM golang:1.22 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --network=none CGO_ENABLED=0 go build -o /out/app .

FROM build AS test
RUN go test ./...

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/app /app
COPY --from=0 /src/README.md /
ENTRYPOINT ["/app"]
