using Microsoft.Extensions.Logging;

namespace Adanns.Cluster.Tests;

/// <summary>Appends the cluster's own log lines (Adanns.*) to one file per test cluster, for post-mortems of a failed run.</summary>
public sealed class FileLoggerProvider(string path, string silo) : ILoggerProvider
{
    private static readonly object Gate = new();

    public ILogger CreateLogger(string categoryName) => new Logger(path, silo, categoryName);

    public void Dispose() { }

    private sealed class Logger(string path, string silo, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information && category.StartsWith("Adanns", StringComparison.Ordinal);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string line = $"{DateTime.UtcNow:HH:mm:ss.fff} {silo} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}\n";
            lock (Gate)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.AppendAllText(path, line);
            }
        }
    }
}
