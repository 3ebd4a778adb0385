# syntax=docker/dockerfile:1
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files only, so that the package layer is cached across source changes.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/CdsHooks.Engine/CdsHooks.Engine.csproj src/CdsHooks.Engine/
COPY src/CdsHooks.Api/CdsHooks.Api.csproj src/CdsHooks.Api/
RUN dotnet restore src/CdsHooks.Api/CdsHooks.Api.csproj
COPY src/ src/
COPY cards/ cards/
RUN dotnet publish src/CdsHooks.Api/CdsHooks.Api.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# The knowledge is in the image at /app/cards; mount a volume there (or set Knowledge__Path) to use a site's own rules.
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
USER $APP_UID
ENTRYPOINT ["dotnet", "CdsHooks.Api.dll"]
