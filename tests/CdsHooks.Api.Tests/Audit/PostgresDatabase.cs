using Npgsql;

namespace CdsHooks.Api.Tests.Audit;

/// <summary>A fresh database on a real PostgreSQL server for one test: from CDSHOOKS_TEST_POSTGRES (which .ci/run
/// sets after installing and starting a server), else a server on 127.0.0.1:55432. The test is skipped, saying how
/// to enable it, only when no server is reachable.</summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    private const string Default = "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";

    private readonly string _server;
    private readonly string _name = "cdshooks_test_" + Guid.NewGuid().ToString("N")[..12];

    private PostgresDatabase(string server) => _server = server;

    public string ConnectionString => new NpgsqlConnectionStringBuilder(_server) { Database = _name }.ToString();

    public static async Task<PostgresDatabase> CreateAsync()
    {
        var server = Environment.GetEnvironmentVariable("CDSHOOKS_TEST_POSTGRES") ?? Default;
        try
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server) { Timeout = 3 }.ToString());
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            var database = new PostgresDatabase(server);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database._name}", connection);
            await create.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
            return database;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            Assert.Skip($"No PostgreSQL server reachable ({e.GetType().Name}). Set CDSHOOKS_TEST_POSTGRES to a connection string, " +
                "or run .ci/run, which installs and starts one.");
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_server);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
