using System.Text.Json;
using CdsHooks.Engine.Fhir;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Hooks;

/// <summary>Validates a CDS Hooks request against the service it was sent to and parses its FHIR resources.
/// Every problem is collected, so that the caller learns all of them at once.</summary>
public static class HookRequestReader
{
    /// <param name="root">The request body.</param>
    /// <param name="service">The service it was sent to.</param>
    /// <param name="whole">Parse every resource whole with Firely instead of only the elements the engine reads
    /// (<see cref="PrefetchReader"/>): slower, and the reference the tests hold the fast reader to.</param>
    public static HookRequest Read(JsonElement root, HookService service, bool whole = false)
    {
        var issues = new List<RequestIssue>();
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(new RequestIssue("$", "invalid-type", "The request body must be a JSON object."));
        }

        var hook = RequiredString(root, "hook", "hook", issues);
        if (hook is not null && hook != service.Hook)
        {
            issues.Add(new RequestIssue("hook", "unsupported-hook", $"This service serves the '{service.Hook}' hook."));
        }

        var hookInstance = RequiredString(root, "hookInstance", "hookInstance", issues);
        // It is logged: keep it an identifier (the spec's is a UUID), not free text a client could fill.
        if (hookInstance is not null && (hookInstance.Length > 128 || !hookInstance.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')))
        {
            issues.Add(new RequestIssue("hookInstance", "invalid-value", "hookInstance must be an identifier such as a UUID (at most 128 letters, digits, '-', '_', '.', ':')."));
            hookInstance = null;
        }

        var fhirServer = OptionalString(root, "fhirServer", "fhirServer", issues);
        if (fhirServer is not null && !Uri.TryCreate(fhirServer, UriKind.Absolute, out _))
        {
            issues.Add(new RequestIssue("fhirServer", "invalid-value", "fhirServer must be an absolute URL."));
        }

        var authorization = ReadAuthorization(root, issues);

        string? patientId = null, encounterId = null;
        IReadOnlyList<Resource> newOrders = [], otherDrafts = [];
        if (!root.TryGetProperty("context", out var context) || context.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue("context", "required", "context must be a JSON object."));
        }
        else
        {
            foreach (var field in service.RequiredContext)
            {
                if (!context.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
                {
                    issues.Add(new RequestIssue($"context.{field}", "required", $"The {service.Hook} hook requires context.{field}."));
                }
            }

            patientId = NormalisePatientId(OptionalString(context, "patientId", "context.patientId", issues));
            encounterId = OptionalString(context, "encounterId", "context.encounterId", issues);
            _ = OptionalString(context, "userId", "context.userId", issues);
            (newOrders, otherDrafts) = ReadOrders(context, service, whole, issues);
        }

        var prefetch = ReadPrefetch(root, patientId, whole, issues);
        if (issues.Count > 0) throw new InvalidHookRequestException(issues);

        return new HookRequest(service, hookInstance!, patientId!, encounterId, fhirServer, authorization,
            newOrders, otherDrafts, prefetch);
    }

    // CDS Hooks 2.0 fhirAuthorization: access_token and token_type ("Bearer") are required; the rest is not used.
    private static FhirAuthorization? ReadAuthorization(JsonElement root, List<RequestIssue> issues)
    {
        if (!root.TryGetProperty("fhirAuthorization", out var auth) || auth.ValueKind == JsonValueKind.Null) return null;
        if (auth.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue("fhirAuthorization", "invalid-type", "fhirAuthorization must be an object."));
            return null;
        }

        var token = RequiredString(auth, "access_token", "fhirAuthorization.access_token", issues);
        var type = RequiredString(auth, "token_type", "fhirAuthorization.token_type", issues);
        if (type is not null && !type.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            issues.Add(new RequestIssue("fhirAuthorization.token_type", "invalid-value", "token_type must be Bearer."));
            return null;
        }

        return token is null || type is null ? null : new FhirAuthorization(token, type);
    }

    private static (IReadOnlyList<Resource> New, IReadOnlyList<Resource> Other) ReadOrders(
        JsonElement context, HookService service, bool whole, List<RequestIssue> issues)
    {
        var field = service.Orders == NewOrderSource.Medications ? "medications" : "draftOrders";
        if (!context.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return ([], []); // reported as a missing required field
        }

        var before = issues.Count;
        var orders = ReadOrderList(element, $"context.{field}", service.Orders == NewOrderSource.Medications, whole, issues);
        if (service.Orders != NewOrderSource.SelectedDraftOrders) return (orders, []);
        if (issues.Count > before) return ([], orders); // selections cannot be checked against orders that did not parse

        if (!context.TryGetProperty("selections", out var selections)) return ([], orders);
        if (selections.ValueKind != JsonValueKind.Array)
        {
            issues.Add(new RequestIssue("context.selections", "invalid-type", "selections must be an array of references."));
            return ([], orders);
        }

        var selected = new List<Resource>();
        var index = 0;
        foreach (var selection in selections.EnumerateArray())
        {
            var location = $"context.selections[{index++}]";
            if (selection.ValueKind != JsonValueKind.String)
            {
                issues.Add(new RequestIssue(location, "invalid-type", "A selection must be a string such as 'MedicationRequest/123'."));
                continue;
            }

            var reference = Text(selection, location, issues);
            var match = orders.FirstOrDefault(o => $"{o.TypeName}/{o.Id}" == reference);
            if (match is null)
            {
                issues.Add(new RequestIssue(location, "not-found", "The selection does not name a resource in context.draftOrders."));
                continue;
            }

            if (!selected.Contains(match)) selected.Add(match); // a selection named twice is still one order
        }

        return (selected, [.. orders.Except(selected)]);
    }

    // draftOrders is a Bundle; medication-prescribe also saw arrays of resources in CDS Hooks 1.0 clients.
    private static List<Resource> ReadOrderList(JsonElement element, string location, bool allowArray, bool whole, List<RequestIssue> issues)
    {
        var resources = new List<Resource>();
        if (allowArray && element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (ReadOrder(item, $"{location}[{i++}]", whole, issues) is { } r) resources.Add(r);
            }

            return resources;
        }

        var resource = ReadOrder(element, location, whole, issues);
        if (resource is null) return resources;
        if (resource is not Bundle bundle)
        {
            issues.Add(new RequestIssue(location, "invalid-resource", "Expected a Bundle of orders."));
            return resources;
        }

        resources.AddRange(bundle.Entry.Select(e => e.Resource).OfType<Resource>());
        return resources;
    }

    // Orders are read for what the engine uses, like prefetch; a suggestion that changes one parses it whole then.
    private static Resource? ReadOrder(JsonElement element, string location, bool whole, List<RequestIssue> issues) =>
        whole ? FhirJson.ReadResource(element, location, issues) : PrefetchReader.ReadOrders(element, location, issues);

    private static Dictionary<string, Prefetched> ReadPrefetch(JsonElement root, string? patientId, bool whole, List<RequestIssue> issues)
    {
        var result = new Dictionary<string, Prefetched>();
        if (!root.TryGetProperty("prefetch", out var prefetch) || prefetch.ValueKind == JsonValueKind.Null) return result;
        if (prefetch.ValueKind != JsonValueKind.Object)
        {
            issues.Add(new RequestIssue("prefetch", "invalid-type", "prefetch must be a JSON object."));
            return result;
        }

        // Only the keys we asked for are parsed: anything else a client adds costs us nothing.
        foreach (var key in PrefetchKeys.Templates.Keys)
        {
            if (!prefetch.TryGetProperty(key, out var value)) continue;
            if (value.ValueKind == JsonValueKind.Null)
            {
                result[key] = new Prefetched(PrefetchState.NoData, null);
                continue;
            }

            var location = "prefetch." + key;
            var resource = whole ? FhirJson.ReadResource(value, location, issues) : PrefetchReader.ReadResource(value, location, issues);
            if (resource is null) continue;
            if (resource is OperationOutcome)
            {
                result[key] = new Prefetched(PrefetchState.Failed, resource);
                continue;
            }

            // What a key holds is checked: a Patient under "medications" would otherwise read as "no medications",
            // and another patient's record as this one's.
            var expected = key == PrefetchKeys.Patient ? nameof(Patient) : nameof(Bundle);
            if (resource.TypeName != expected)
            {
                issues.Add(new RequestIssue($"prefetch.{key}", "invalid-resource", $"prefetch.{key} must be a {expected} (or an OperationOutcome)."));
                continue;
            }

            if (resource is Patient patient && patientId is not null && patient.Id is not null && patient.Id != patientId)
            {
                issues.Add(new RequestIssue("prefetch.patient.id", "invalid-value", "prefetch.patient is not the patient named in context.patientId."));
                continue;
            }

            result[key] = new Prefetched(PrefetchState.Data, resource);
        }

        return result;
    }

    private static string? RequiredString(JsonElement obj, string name, string location, List<RequestIssue> issues)
    {
        var value = OptionalString(obj, name, location, issues);
        if (value is null && !issues.Exists(i => i.Location == location))
        {
            issues.Add(new RequestIssue(location, "required", $"{location} is required."));
        }

        return value;
    }

    private static string? OptionalString(JsonElement obj, string name, string location, List<RequestIssue> issues)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String)
        {
            issues.Add(new RequestIssue(location, "invalid-type", $"{location} must be a string."));
            return null;
        }

        var text = Text(value, location, issues);
        if (text is null) return null;
        if (string.IsNullOrWhiteSpace(text))
        {
            issues.Add(new RequestIssue(location, "invalid-value", $"{location} must not be empty."));
            return null;
        }

        return text;
    }

    // A JSON string can hold a lone surrogate ("\ud800") or invalid UTF-8, which .NET refuses to turn into a string.
    private static string? Text(JsonElement value, string location, List<RequestIssue> issues)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            issues.Add(new RequestIssue(location, "invalid-value", $"{location} is not valid Unicode text."));
            return null;
        }
    }

    // Clients send "123" or "Patient/123".
    private static string? NormalisePatientId(string? id) =>
        id is not null && id.StartsWith("Patient/", StringComparison.Ordinal) ? id["Patient/".Length..] : id;

    private static InvalidHookRequestException Invalid(RequestIssue issue) => new([issue]);
}
