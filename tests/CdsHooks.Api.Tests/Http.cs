using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace CdsHooks.Api.Tests;

internal static class Http
{
    public static Task<HttpResponseMessage> PostJson(this HttpClient client, string url, string json) =>
        client.PostAsync(url, new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json")));

    public static Task<HttpResponseMessage> PostJson(this HttpClient client, string url, JsonNode json) =>
        client.PostJson(url, json.ToJsonString());

    public static async Task<JsonNode> Json(this HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync()) ?? throw new InvalidOperationException("empty body");

    /// <summary>The answer as text, without the uuids each call makes anew.</summary>
    public static string WithoutUuids(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                o.Remove("uuid");
                foreach (var (_, child) in o.ToList()) if (child is not null) WithoutUuids(child);
                break;
            case JsonArray a:
                foreach (var child in a) if (child is not null) WithoutUuids(child);
                break;
        }

        return node.ToJsonString();
    }
}
