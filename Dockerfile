# syntax=docker/dockerfile:1
# Build: docker build -t medication-safety-cds-hooks .   Run: see docker-compose.yml and the README's "Deploy".
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so that the package layer is cached across source changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/CdsHooks.Engine/CdsHooks.Engine.csproj src/CdsHooks.Engine/
COPY src/CdsHooks.Api/CdsHooks.Api.csproj src/CdsHooks.Api/
# For the image's architecture (amd64, arm64): the image carries its own trimmed runtime.
ARG TARGETARCH
RUN dotnet restore src/CdsHooks.Api/CdsHooks.Api.csproj -a $TARGETARCH -p:SelfContained=true -p:PublishTrimmed=true
COPY src/ src/
COPY cards/ cards/
COPY samples/patients/ samples/patients/
# Self-contained, with the .NET and ASP.NET Core frameworks trimmed to what the service uses (the packages and our own
# code stay whole; src/CdsHooks.Api/CdsHooks.Api.csproj): peak working set under the load script about 155 MB instead of
# 190-210 MB with the shared framework, for a first call in about 1.3 s instead of 0.5-0.8 s (docs/performance.md).
# TrimmedServiceTests publishes the service the same way and holds it to the untrimmed service's answers.
RUN dotnet publish src/CdsHooks.Api/CdsHooks.Api.csproj -c Release --no-restore -a $TARGETARCH --self-contained -p:PublishTrimmed=true -o /app

# The runtime is in /app: the base image needs only the native libraries it uses.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
WORKDIR /app
COPY --from=build /app .
# The knowledge is in the image at /app/cards; mount a volume there (or set Knowledge__Path) to use a site's own rules.
# /app/data holds the SQLite audit trail when no PostgreSQL is configured: mount a volume there to keep it.
RUN mkdir -p /app/data && chown $APP_UID /app/data
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
USER $APP_UID
# The runtime image has no curl: the service probes its own liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/app/CdsHooks.Api", "--health-check"]
ENTRYPOINT ["/app/CdsHooks.Api"]
