using System.Reflection;
using System.Text.Json;
using CdsHooks.Engine.Hooks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Hooks;

/// <summary>
/// A hook call's 200 answer, written by <see cref="CdsResponseWriter"/> with the service's JSON options (the answer's
/// bytes are the records' as the serializer writes them by reflection, at about two thirds of the CPU). The writer is
/// not among the HTTP options themselves: the OpenAPI document describes the records from those options' reflection
/// metadata, and a converter for the answer would leave it an empty schema.
/// </summary>
public sealed class CdsAnswer(CdsResponse response) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<CdsResponse>
{
    public CdsResponse Value => response;

    object? IValueHttpResult.Value => response;

    public int? StatusCode => StatusCodes.Status200OK;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status200OK;
        var options = httpContext.RequestServices.GetRequiredService<Json>().Options;
        return httpContext.Response.WriteAsJsonAsync(response, options, "application/json; charset=utf-8", httpContext.RequestAborted);
    }

    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(CdsResponse), ["application/json"]));

    /// <summary>The HTTP JSON options with the answer's writer added, made once.</summary>
    internal sealed class Json(IOptions<JsonOptions> http)
    {
        public JsonSerializerOptions Options { get; } = new(http.Value.SerializerOptions) { Converters = { new CdsResponseWriter() } };
    }
}
