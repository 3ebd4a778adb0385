using CdsHooks.Api.Audit;
using Microsoft.Extensions.Options;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>An audit database of its own in the temporary directory, deleted with its WAL files when disposed.</summary>
internal sealed class SqliteFile(string name) : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"cds-hooks-{name}-{Guid.NewGuid():N}.db");

    public IOptions<AuditOptions> Options => Microsoft.Extensions.Options.Options.Create(new AuditOptions { ConnectionString = $"Data Source={Path}" });

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools(); // pooled connections keep the files open
        foreach (var file in Directory.GetFiles(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "*")) File.Delete(file);
    }
}
