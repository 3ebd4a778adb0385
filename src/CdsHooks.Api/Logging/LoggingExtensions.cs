using Serilog;
using Serilog.Events;

namespace CdsHooks.Api.Logging;

public static class LoggingExtensions
{
    /// <summary>Serilog from configuration (<c>Serilog</c> section), plus any sink registered in DI.</summary>
    /// <remarks>appsettings.json writes compact JSON to standard output (<see cref="BatchedConsoleSink"/>).
    /// appsettings.Development.json adds an <c>outputTemplate</c> to the same sink; configuration merges it beside the
    /// <c>formatter</c>, and the sink's configuration method lets the template win, so Development gets the
    /// human-readable line. A file that adds a <c>formatter</c> over a template loses the same way. LogFormatTests
    /// holds both.</remarks>
    public static void AddLogging(this WebApplicationBuilder builder) =>
        builder.Services.AddSerilog((services, logger) => logger
            .ReadFrom.Configuration(builder.Configuration)
            .ReadFrom.Services(services)
            .Enrich.FromLogContext(),
            // The static logger stays the start-up console logger: several hosts (tests) must not share or dispose it.
            preserveStaticLogger: true);

    /// <summary>One event per request: method, path, status, elapsed time, and for hook calls the hook, hookInstance,
    /// service id and card count. Identifiers only: never a body, a name, a date of birth or a token.</summary>
    public static void UseRequestLogging(this WebApplication app) =>
        app.UseSerilogRequestLogging(options =>
        {
            options.Logger = app.Services.GetRequiredService<Serilog.ILogger>();
            options.MessageTemplate = "HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.0} ms";
            options.GetLevel = (context, _, exception) =>
                exception is not null || context.Response.StatusCode >= 500 ? LogEventLevel.Error : LogEventLevel.Information;
        });
}
