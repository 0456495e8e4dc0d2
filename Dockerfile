# For users who build with Docker: `docker build -t bgplb .`
# (`make image` builds the same image without a Docker engine.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bgplb ./cmd/bgplb

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bgplb /bgplb
USER 65532:65532
ENTRYPOINT ["/bgplb"]
