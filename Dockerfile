# syntax=docker/dockerfile:1
# Build: docker build -t medication-safety-cds-hooks .   Run: see docker-compose.yml and the README's "Deploy".
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so that the package layer is cached across source changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/CdsHooks.Engine/CdsHooks.Engine.csproj src/CdsHooks.Engine/
COPY src/CdsHooks.Api/CdsHooks.Api.csproj src/CdsHooks.Api/
# For the image's architecture (amd64, arm64), which ReadyToRun compiles for.
ARG TARGETARCH
RUN dotnet restore src/CdsHooks.Api/CdsHooks.Api.csproj -a $TARGETARCH
COPY src/ src/
COPY cards/ cards/
COPY samples/patients/ samples/patients/
# ReadyToRun: compiled ahead of time, so the service does not JIT-compile its dependencies as it starts (Firely's
# model alone is a 250 KB method): first call in about 0.6 s instead of 1 s, 40-70 MB less memory (docs/performance.md).
RUN dotnet publish src/CdsHooks.Api/CdsHooks.Api.csproj -c Release --no-restore -a $TARGETARCH --self-contained false \
    -p:PublishReadyToRun=true -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# The knowledge is in the image at /app/cards; mount a volume there (or set Knowledge__Path) to use a site's own rules.
# /app/data holds the SQLite audit trail when no PostgreSQL is configured: mount a volume there to keep it.
RUN mkdir -p /app/data && chown $APP_UID /app/data
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
USER $APP_UID
# The runtime image has no curl: the service probes its own liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["dotnet", "CdsHooks.Api.dll", "--health-check"]
ENTRYPOINT ["dotnet", "CdsHooks.Api.dll"]
