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
}
