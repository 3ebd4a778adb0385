using System.Text.Json;
using CdsHooks.Engine.Fhir;

namespace CdsHooks.Engine.Hooks;

/// <summary>Validates a CDS Hooks request against the service it was sent to and parses its FHIR resources.
/// Every problem is collected, so that the caller learns all of them at once.</summary>
public static class HookRequestReader
{
    private static readonly System.Buffers.SearchValues<char> IdentifierCharacters =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:");

    /// <summary>Reads a request already parsed into a document (the CLI, the playground, tests): its own text is read.</summary>
    public static HookRequest Read(JsonElement root, HookService service, bool whole = false) =>
        Read(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(root), service, whole);

    /// <param name="body">The request body: JSON text in UTF-8 (a byte order mark allowed). Malformed JSON, nesting deeper
    /// than 64 and duplicate properties throw <see cref="JsonException"/>.</param>
    /// <param name="service">The service it was sent to.</param>
    /// <param name="whole">Parse every resource whole with Firely instead of only the elements the engine reads
    /// (<see cref="PrefetchReader"/>), and make the records from that (<see cref="FhirRecord.From"/>): slower, and the
    /// reference the tests hold the fast reader to.</param>
    /// <remarks>One forward pass over the text (<see cref="PrefetchReader.Pass"/>): the envelope's members may come in
    /// any order, so what depends on two of them (the selections and the orders, the patient and the prefetched
    /// Patient) is checked at the end.</remarks>
    public static HookRequest Read(ReadOnlySpan<byte> body, HookService service, bool whole = false)
    {
        var issues = new List<RequestIssue>();
        var pass = new PrefetchReader.Pass(PrefetchReader.WithoutByteOrderMark(body), issues);
        pass.Start();
        if (pass.Token != JsonTokenType.StartObject)
        {
            pass.Skip();
            pass.End();
            throw Invalid(new RequestIssue("$", "invalid-type", "The request body must be a JSON object."));
        }

        string? hook = null, hookInstance = null, fhirServer = null;
        FhirAuthorization? authorization = null;
        Context? context = null;
        var prefetch = new Dictionary<string, Prefetched>();
        pass.Open();
        while (pass.Next(out var name))
        {
            if (name.SequenceEqual("hook"u8)) hook = OptionalString(ref pass, "hook", issues);
            else if (name.SequenceEqual("hookInstance"u8)) hookInstance = OptionalString(ref pass, "hookInstance", issues);
            else if (name.SequenceEqual("fhirServer"u8)) fhirServer = OptionalString(ref pass, "fhirServer", issues);
            else if (name.SequenceEqual("fhirAuthorization"u8)) authorization = ReadAuthorization(ref pass, issues);
            else if (name.SequenceEqual("context"u8)) context = ReadContext(ref pass, service, whole, issues);
            else if (name.SequenceEqual("prefetch"u8)) ReadPrefetch(ref pass, prefetch, whole, issues);
            else pass.Skip();
        }

        pass.End();

        Required(hook, "hook", issues);
        if (hook is not null && hook != service.Hook)
        {
            issues.Add(new RequestIssue("hook", "unsupported-hook", $"This service serves the '{service.Hook}' hook."));
        }

        Required(hookInstance, "hookInstance", issues);
        // It is logged: keep it an identifier (the spec's is a UUID), not free text a client could fill.
        if (hookInstance is not null && (hookInstance.Length > 128 || hookInstance.AsSpan().ContainsAnyExcept(IdentifierCharacters)))
        {
            issues.Add(new RequestIssue("hookInstance", "invalid-value", "hookInstance must be an identifier such as a UUID (at most 128 letters, digits, '-', '_', '.', ':')."));
            hookInstance = null;
        }

        if (fhirServer is not null && !Uri.TryCreate(fhirServer, UriKind.Absolute, out _))
        {
            issues.Add(new RequestIssue("fhirServer", "invalid-value", "fhirServer must be an absolute URL."));
        }

        IReadOnlyList<FhirRecord> newOrders = [], otherDrafts = [];
        if (context is null)
        {
            issues.Add(new RequestIssue("context", "required", "context must be a JSON object."));
        }
        else
        {
            (newOrders, otherDrafts) = context.Orders(service, issues);
        }

        // What a key holds is checked (ReadPrefetch), and whose it is: another patient's record would read as this one's.
        if (prefetch.TryGetValue(PrefetchKeys.Patient, out var patient) && patient.Resource is PatientRecord { Id: { } id }
            && context?.PatientId is { } patientId && id != patientId)
        {
            issues.Add(new RequestIssue("prefetch.patient.id", "invalid-value", "prefetch.patient is not the patient named in context.patientId."));
        }

        if (issues.Count > 0) throw new InvalidHookRequestException(InRequestOrder(issues));

        return new HookRequest(service, hookInstance!, context!.PatientId!, context.EncounterId, fhirServer, authorization,
            newOrders, otherDrafts, prefetch);
    }

    // Problems are listed member by member of the request, whatever the order the client sent its members in; within a
    // member, in the order of its text.
    private static readonly string[] Members = ["hook", "hookInstance", "fhirServer", "fhirAuthorization", "context", "prefetch"];

    private static List<RequestIssue> InRequestOrder(List<RequestIssue> issues) =>
        [.. issues.OrderBy(i => Array.FindIndex(Members, m => i.Location == m || i.Location.StartsWith(m + ".", StringComparison.Ordinal)) is var rank and >= 0 ? rank : Members.Length)];

    // CDS Hooks 2.0 fhirAuthorization: access_token and token_type ("Bearer") are required; the rest is not used.
    private static FhirAuthorization? ReadAuthorization(ref PrefetchReader.Pass pass, List<RequestIssue> issues)
    {
        if (pass.Token == JsonTokenType.Null) return null;
        if (pass.Token != JsonTokenType.StartObject)
        {
            issues.Add(new RequestIssue("fhirAuthorization", "invalid-type", "fhirAuthorization must be an object."));
            pass.Skip();
            return null;
        }

        string? token = null, type = null;
        pass.Open();
        while (pass.Next(out var name))
        {
            if (name.SequenceEqual("access_token"u8)) token = OptionalString(ref pass, "fhirAuthorization.access_token", issues);
            else if (name.SequenceEqual("token_type"u8)) type = OptionalString(ref pass, "fhirAuthorization.token_type", issues);
            else pass.Skip();
        }

        Required(token, "fhirAuthorization.access_token", issues);
        Required(type, "fhirAuthorization.token_type", issues);
        if (type is not null && !type.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            issues.Add(new RequestIssue("fhirAuthorization.token_type", "invalid-value", "token_type must be Bearer."));
            return null;
        }

        return token is null || type is null ? null : new FhirAuthorization(token, type);
    }

    /// <summary>The hook's context as read: its members, and the orders with the selections, which are matched once
    /// both are read.</summary>
    private sealed class Context
    {
        public string? PatientId { get; set; }

        public string? EncounterId { get; set; }

        public List<FhirRecord>? AllOrders { get; set; }

        /// <summary>Problems found in the orders: selections are not checked against orders that did not parse.</summary>
        public int OrderIssues { get; set; }

        /// <summary>Each selection's location and reference; null for one that is not a string, or not valid Unicode
        /// (with its problem).</summary>
        public List<(string Location, RequestIssue? Problem, string? Reference)>? Selections { get; set; }

        public bool SelectionsNotAnArray { get; set; }

        public (IReadOnlyList<FhirRecord> New, IReadOnlyList<FhirRecord> Other) Orders(HookService service, List<RequestIssue> issues)
        {
            if (AllOrders is not { } orders) return ([], []); // reported as a missing required field
            if (service.Orders != NewOrderSource.SelectedDraftOrders) return (orders, []);
            if (OrderIssues > 0) return ([], orders); // selections cannot be checked against orders that did not parse

            if (SelectionsNotAnArray)
            {
                issues.Add(new RequestIssue("context.selections", "invalid-type", "selections must be an array of references."));
                return ([], orders);
            }

            // By reference, once: a request of many orders and many selections costs linear time.
            var byReference = new Dictionary<string, FhirRecord>(StringComparer.Ordinal);
            foreach (var order in orders) byReference.TryAdd($"{order.TypeName}/{order.Id}", order);
            var selected = new List<FhirRecord>();
            var chosen = new HashSet<FhirRecord>(ReferenceEqualityComparer.Instance);
            foreach (var (location, problem, reference) in Selections ?? [])
            {
                if (problem is not null)
                {
                    issues.Add(problem);
                    continue;
                }

                if (!byReference.TryGetValue(reference!, out var match))
                {
                    issues.Add(new RequestIssue(location, "not-found", "The selection does not name a resource in context.draftOrders."));
                    continue;
                }

                if (chosen.Add(match)) selected.Add(match); // a selection named twice is still one order
            }

            return (selected, [.. orders.Where(o => !chosen.Contains(o))]);
        }
    }

    private static Context? ReadContext(ref PrefetchReader.Pass pass, HookService service, bool whole, List<RequestIssue> issues)
    {
        if (pass.Token != JsonTokenType.StartObject)
        {
            pass.Skip();
            return null; // reported as required
        }

        var context = new Context();
        var ordersField = service.Orders == NewOrderSource.Medications ? "medications" : "draftOrders";
        var present = new bool[service.RequiredContext.Count];
        pass.Open();
        while (pass.Next(out var name))
        {
            for (var i = 0; i < present.Length; i++)
            {
                if (System.Text.Ascii.Equals(name, service.RequiredContext[i])) present[i] = pass.Token != JsonTokenType.Null;
            }

            if (name.SequenceEqual("patientId"u8))
            {
                context.PatientId = NormalisePatientId(OptionalString(ref pass, "context.patientId", issues));
            }
            else if (name.SequenceEqual("encounterId"u8))
            {
                context.EncounterId = OptionalString(ref pass, "context.encounterId", issues);
            }
            else if (name.SequenceEqual("userId"u8))
            {
                _ = OptionalString(ref pass, "context.userId", issues);
            }
            else if (System.Text.Ascii.Equals(name, ordersField) && pass.Token != JsonTokenType.Null)
            {
                var before = issues.Count;
                context.AllOrders = ReadOrderList(ref pass, $"context.{ordersField}", service.Orders == NewOrderSource.Medications, whole, issues);
                context.OrderIssues = issues.Count - before;
            }
            else if (name.SequenceEqual("selections"u8) && service.Orders == NewOrderSource.SelectedDraftOrders)
            {
                ReadSelections(ref pass, context);
            }
            else
            {
                pass.Skip();
            }
        }

        for (var i = 0; i < present.Length; i++)
        {
            if (present[i]) continue;
            var field = service.RequiredContext[i];
            issues.Add(new RequestIssue($"context.{field}", "required", $"The {service.Hook} hook requires context.{field}."));
        }

        return context;
    }

    private static void ReadSelections(ref PrefetchReader.Pass pass, Context context)
    {
        if (pass.Token != JsonTokenType.StartArray)
        {
            context.SelectionsNotAnArray = true;
            pass.Skip();
            return;
        }

        context.Selections = [];
        var index = 0;
        while (pass.NextItem())
        {
            var location = $"context.selections[{index++}]";
            if (pass.Token != JsonTokenType.String)
            {
                context.Selections.Add((location, new RequestIssue(location, "invalid-type", "A selection must be a string such as 'MedicationRequest/123'."), null));
                pass.Skip();
                continue;
            }

            var reference = pass.String(out var invalid);
            context.Selections.Add(invalid
                ? (location, new RequestIssue(location, "invalid-value", $"{location} is not valid Unicode text."), null)
                : (location, null, reference));
        }
    }

    // draftOrders is a Bundle; medication-prescribe also saw arrays of resources in CDS Hooks 1.0 clients.
    private static List<FhirRecord> ReadOrderList(ref PrefetchReader.Pass pass, string location, bool allowArray, bool whole, List<RequestIssue> issues)
    {
        var resources = new List<FhirRecord>();
        if (allowArray && pass.Token == JsonTokenType.StartArray)
        {
            var i = 0;
            while (pass.NextItem())
            {
                if (ReadResource(ref pass, $"{location}[{i++}]", keepSource: true, whole, issues) is { } r) resources.Add(r);
            }

            return resources;
        }

        var resource = ReadResource(ref pass, location, keepSource: true, whole, issues);
        if (resource is null) return resources;
        if (resource is not BundleRecord bundle)
        {
            issues.Add(new RequestIssue(location, "invalid-resource", "Expected a Bundle of orders."));
            return resources;
        }

        foreach (var entry in bundle.Entries)
        {
            if (entry is { } order) resources.Add(order);
        }

        return resources;
    }

    // Orders are read for what the engine uses, like prefetch, and keep their JSON: a suggestion that changes one
    // parses it whole then. With whole, Firely parses each resource's own text, and the record is made from that.
    private static FhirRecord? ReadResource(ref PrefetchReader.Pass pass, string location, bool keepSource, bool whole, List<RequestIssue> issues)
    {
        if (!whole) return pass.Resource(pass.Root(location), keepSource);
        var start = pass.ValueStart;
        pass.Skip();
        using var document = JsonDocument.Parse(pass.TextFrom(start).ToArray());
        return FhirJson.ReadResource(document.RootElement, location, issues) is { } resource ? FhirRecord.From(resource) : null;
    }

    private static void ReadPrefetch(ref PrefetchReader.Pass pass, Dictionary<string, Prefetched> result, bool whole, List<RequestIssue> issues)
    {
        if (pass.Token == JsonTokenType.Null) return;
        if (pass.Token != JsonTokenType.StartObject)
        {
            issues.Add(new RequestIssue("prefetch", "invalid-type", "prefetch must be a JSON object."));
            pass.Skip();
            return;
        }

        pass.Open();
        while (pass.Next(out var name))
        {
            // Only the keys we asked for are read: anything else a client adds costs us a scan, no more.
            string? key = null;
            foreach (var known in PrefetchKeys.Names)
            {
                if (System.Text.Ascii.Equals(name, known)) key = known;
            }

            if (key is null)
            {
                pass.Skip();
                continue;
            }

            if (pass.Token == JsonTokenType.Null)
            {
                result[key] = new Prefetched(PrefetchState.NoData, null);
                continue;
            }

            var location = "prefetch." + key;
            var resource = ReadResource(ref pass, location, keepSource: false, whole, issues);
            if (resource is null) continue;
            if (resource.TypeName == "OperationOutcome")
            {
                result[key] = new Prefetched(PrefetchState.Failed, resource);
                continue;
            }

            // What a key holds is checked: a Patient under "medications" would otherwise read as "no medications".
            var expected = key == PrefetchKeys.Patient ? "Patient" : "Bundle";
            if (resource.TypeName != expected)
            {
                issues.Add(new RequestIssue($"prefetch.{key}", "invalid-resource", $"prefetch.{key} must be a {expected} (or an OperationOutcome)."));
                continue;
            }

            result[key] = new Prefetched(PrefetchState.Data, resource);
        }
    }

    private static void Required(string? value, string location, List<RequestIssue> issues)
    {
        if (value is null && !issues.Exists(i => i.Location == location))
        {
            issues.Add(new RequestIssue(location, "required", $"{location} is required."));
        }
    }

    private static string? OptionalString(ref PrefetchReader.Pass pass, string location, List<RequestIssue> issues)
    {
        if (pass.Token == JsonTokenType.Null) return null;
        if (pass.Token != JsonTokenType.String)
        {
            issues.Add(new RequestIssue(location, "invalid-type", $"{location} must be a string."));
            pass.Skip();
            return null;
        }

        // A JSON string can hold a lone surrogate ("\ud800") or invalid UTF-8, which .NET refuses to turn into a string.
        var text = pass.String(out var invalid);
        if (invalid)
        {
            issues.Add(new RequestIssue(location, "invalid-value", $"{location} is not valid Unicode text."));
            return null;
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            issues.Add(new RequestIssue(location, "invalid-value", $"{location} must not be empty."));
            return null;
        }

        return text;
    }

    // Clients send "123" or "Patient/123".
    private static string? NormalisePatientId(string? id) =>
        id is not null && id.StartsWith("Patient/", StringComparison.Ordinal) ? id["Patient/".Length..] : id;

    private static InvalidHookRequestException Invalid(RequestIssue issue) => new([issue]);
}
