namespace CdsHooks.Api.Audit;

/// <summary>Where cards and feedback are kept (configuration section <c>Audit</c>).</summary>
public sealed class AuditOptions
{
    public const string Section = "Audit";

    /// <summary><c>sqlite</c> (default: a file, nothing to install) or <c>postgres</c> (several instances).</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>For SQLite, a relative <c>Data Source</c> is under the application directory.</summary>
    public string ConnectionString { get; set; } = "Data Source=data/cds-hooks.db";

    /// <summary>The HMAC key for patient and encounter identifiers; the ids themselves are never stored. Required
    /// outside Development. Changing it makes earlier history unmatchable (alert-fatigue controls start afresh).</summary>
    public string? HashKey { get; set; }

    /// <summary>Cards and their feedback older than this are purged.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(365);

    /// <summary>How long a hook call waits for the audit trail (the fatigue controls' history, queueing the record)
    /// before it answers with the cards unfiltered and unrecorded.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often the purge runs.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromHours(6);

    /// <summary>SHA-256 hashes (hex) of the keys that may read analytics (<c>Authorization: Bearer &lt;key&gt;</c>).
    /// Empty: analytics are open in Development and closed elsewhere.</summary>
    public List<string> AnalyticsKeyHashes { get; set; } = [];
}
