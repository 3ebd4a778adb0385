using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Security;

public static class SecurityExtensions
{
    public const string CorsPolicy = "cds-clients";
    public const string RateLimitPolicy = "per-client";
    public const string CdsClientPolicy = "cds-client";

    /// <summary>The perimeter: EHR authentication, CORS for browser clients, body size, request timeout and a rate
    /// limit per client.</summary>
    public static void AddCdsSecurity(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<CdsAuthenticationOptions>().BindConfiguration(CdsAuthenticationOptions.Section)
            .Validate(o => o.TrustedClients.TrueForAll(c => c.Issuer.Length > 0 && (c.JwksUrl is not null || c.Jwks is not null)),
                "Every Authentication:TrustedClients entry needs an Issuer and a JwksUrl or an inline Jwks.")
            .ValidateOnStart();
        builder.Services.AddOptions<LimitOptions>().BindConfiguration(LimitOptions.Section)
            .Validate(o => o.MaxRequestBodyBytes > 0 && o.PermitsPerSecond > 0 && o.Burst > 0, "Limits must be positive.")
            .ValidateOnStart();

        var auth = builder.Configuration.GetSection(CdsAuthenticationOptions.Section).Get<CdsAuthenticationOptions>() ?? new();
        if (!builder.Environment.IsDevelopment() && (!auth.Enabled || auth.TrustedClients.Count == 0))
        {
            // A clinical service that would answer anyone must not start outside development.
            throw new InvalidOperationException(
                "Authentication is required outside Development: set Authentication:Enabled=true and register at least one " +
                "EHR in Authentication:TrustedClients (Issuer and JwksUrl or Jwks). See the README, 'Register an EHR'.");
        }

        if (!builder.Environment.IsDevelopment() && string.IsNullOrWhiteSpace(auth.PublicBaseUrl))
        {
            // Without it, the expected aud would come from the request's Host header, which the caller chooses.
            throw new InvalidOperationException("Authentication:PublicBaseUrl is required outside Development: the URL EHRs call, which tokens' aud must name.");
        }

        var limits = builder.Configuration.GetSection(LimitOptions.Section).Get<LimitOptions>() ?? new();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes);

        builder.Services.AddMemoryCache();
        // A JWKS is fetched from the exact URL allowed: a redirect could lead anywhere.
        builder.Services.AddHttpClient(JwksCache.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(5))
            .ConfigurePrimaryHttpMessageHandler(() => new HttpClientHandler { AllowAutoRedirect = false })
            .RemoveAllLoggers();
        builder.Services.AddSingleton<JwksCache>();
        // No default scheme: only the CDS Hooks endpoints authenticate (health, metrics and analytics never run the
        // JWT handler, so they cannot be used to make the service fetch keys). Since ASP.NET Core 7 the only scheme
        // registered becomes the default unless this switch says otherwise; the authentication middleware then ran the
        // handler on every request, probes included (AuthenticationTests; it was 1.4% of the CPU at saturation).
        AppContext.SetSwitch("Microsoft.AspNetCore.Authentication.SuppressAutoDefaultScheme", true);
        builder.Services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, CdsJwtHandler>(CdsJwtHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(CdsClientPolicy, policy => policy.AddAuthenticationSchemes(CdsJwtHandler.SchemeName).RequireAuthenticatedUser());

        builder.Services.AddCors(cors => cors.AddPolicy(CorsPolicy, policy => policy
            .WithOrigins([.. limits.CorsOrigins])
            .WithMethods("GET", "POST")
            .WithHeaders("Authorization", "Content-Type")));

        builder.Services.AddRequestTimeouts(timeouts => timeouts.DefaultPolicy = new() { Timeout = limits.RequestTimeout });
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                await context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests", Detail = "Retry after the time in Retry-After." },
                });
            };

            // One bucket per calling EHR (its token's issuer), else per remote address. The bucket's factory is made
            // once: made inside the partitioner (as RateLimitPartition.GetTokenBucketLimiter takes it), it and the
            // wrapper around it were two delegates for every call. Without a timer of its own, as that method makes
            // it: the partitioned limiter's one timer replenishes every bucket.
            Func<object, RateLimiter> bucket = _ => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = limits.Burst,
                TokensPerPeriod = limits.PermitsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = false,
            });
            limiter.AddPolicy(RateLimitPolicy, http => new RateLimitPartition<object>(Caller.Of(http), bucket));
        });
    }

    /// <summary>Whose rate-limit bucket a call takes: its token's issuer (a string) when it was authenticated, else its
    /// remote address (the connection's <see cref="IPAddress"/>, compared by value), else one bucket for calls with
    /// neither. A string never equals an address, so an issuer and an address never share a bucket. An object, not a
    /// struct: ASP.NET Core keeps the key as an object and would box a struct on every call. The principal is read from
    /// the authentication feature: <c>HttpContext.User</c> makes an empty principal, with its list of identities, for
    /// every call that has none (authentication off; docs/performance.md, sixteenth round).</summary>
    internal static class Caller
    {
        private static readonly object Unknown = new();

        public static object Of(HttpContext http) =>
            http.Features.Get<Microsoft.AspNetCore.Http.Features.Authentication.IHttpAuthenticationFeature>()?.User?.FindFirst("iss")?.Value
            ?? (object?)http.Connection.RemoteIpAddress
            ?? Unknown;
    }

    public static void UseCdsSecurity(this WebApplication app)
    {
        if (!app.Environment.IsDevelopment())
        {
            app.UseHsts();
            app.UseHttpsRedirection();
        }

        var auth = app.Services.GetRequiredService<IOptions<CdsAuthenticationOptions>>().Value;
        if (!auth.Enabled)
        {
            app.Logger.LogWarning("AUTHENTICATION IS OFF: any caller can use this service. Development only; " +
                "set Authentication:Enabled=true and register EHRs in Authentication:TrustedClients before real use.");
        }

        app.UseCors();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        app.UseRequestTimeouts();
        app.Use(LimitBody);
    }

    /// <summary>The CDS Hooks endpoints' conventions: CORS, authentication (unless off), rate limit, timeout.</summary>
    public static RouteGroupBuilder WithCdsSecurity(this RouteGroupBuilder group, IServiceProvider services)
    {
        group.RequireCors(CorsPolicy).RequireRateLimiting(RateLimitPolicy);
        if (services.GetRequiredService<IOptions<CdsAuthenticationOptions>>().Value.Enabled) group.RequireAuthorization(CdsClientPolicy);
        return group;
    }

    // Kestrel enforces the limit on the wire; this also covers hosts that do not (and tells the client why, as a 413).
    private static Task LimitBody(HttpContext context, RequestDelegate next)
    {
        var max = context.RequestServices.GetRequiredService<IOptions<LimitOptions>>().Value.MaxRequestBodyBytes;
        if (context.Request.ContentLength > max) throw new BadHttpRequestException("Request body too large.", (int)HttpStatusCode.RequestEntityTooLarge);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature) feature.MaxRequestBodySize = max;
        context.Request.Body = new LimitedStream(context.Request.Body, max);
        return next(context);
    }

    private sealed class LimitedStream(Stream inner, long max) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int read)
        {
            _read += read;
            return _read > max ? throw new BadHttpRequestException("Request body too large.", (int)HttpStatusCode.RequestEntityTooLarge) : read;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
