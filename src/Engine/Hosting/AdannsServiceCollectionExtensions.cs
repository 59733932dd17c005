using System.Diagnostics.Metrics;
using Adanns.Engine.Collections;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Adanns.Engine.Hosting;

/// <summary>
/// Settings of the embedded database registered by <c>services.AddAdanns(o => …)</c>; bindable from configuration
/// (<c>services.AddAdanns(o => config.GetSection("Adanns").Bind(o))</c>). Validated when the database is first
/// resolved (and at host start): a bad value fails with one message naming the setting and its allowed range.
/// </summary>
public sealed class AdannsOptions
{
    /// <summary>Database directory (created if missing). Required.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>See <see cref="DatabaseOptions.CheckpointInterval"/>.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>See <see cref="DatabaseOptions.CheckpointWalBytes"/>.</summary>
    public long CheckpointWalBytes { get; set; } = 256L << 20;

    /// <summary>See <see cref="DatabaseOptions.RecordMemoryBytes"/>.</summary>
    public long RecordMemoryBytes { get; set; } = 64L << 20;

    /// <summary>See <see cref="DatabaseOptions.BackgroundMaintenance"/>.</summary>
    public bool BackgroundMaintenance { get; set; } = true;

    /// <summary>See <see cref="DatabaseOptions.ExactFilterSelectivity"/>.</summary>
    public double ExactFilterSelectivity { get; set; } = 0.02;

    /// <summary>See <see cref="DatabaseOptions.MaxIndexBacklogBytes"/>.</summary>
    public long MaxIndexBacklogBytes { get; set; } = 512L << 20;

    /// <summary>See <see cref="DatabaseOptions.BackpressureTimeout"/>.</summary>
    public TimeSpan BackpressureTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>See <see cref="DatabaseOptions.CheckpointOnDispose"/>.</summary>
    public bool CheckpointOnDispose { get; set; } = true;

    /// <summary>See <see cref="DatabaseOptions.ImbalanceFactor"/>.</summary>
    public double ImbalanceFactor { get; set; } = 8;

    /// <summary>See <see cref="DatabaseOptions.ProfileIndexes"/>.</summary>
    public bool ProfileIndexes { get; set; }

    /// <summary>The engine's options, logging to <paramref name="loggerFactory"/> and metering through <paramref name="meterFactory"/>.</summary>
    public DatabaseOptions ToDatabaseOptions(ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null) => new()
    {
        CheckpointInterval = CheckpointInterval,
        CheckpointWalBytes = CheckpointWalBytes,
        RecordMemoryBytes = RecordMemoryBytes,
        BackgroundMaintenance = BackgroundMaintenance,
        ExactFilterSelectivity = ExactFilterSelectivity,
        CheckpointOnDispose = CheckpointOnDispose,
        MaxIndexBacklogBytes = MaxIndexBacklogBytes,
        BackpressureTimeout = BackpressureTimeout,
        ImbalanceFactor = ImbalanceFactor,
        ProfileIndexes = ProfileIndexes,
        LoggerFactory = loggerFactory,
        MeterFactory = meterFactory,
    };
}

/// <summary>Checks <see cref="AdannsOptions"/> with the same rules as <see cref="DatabaseOptions.Validate"/>.</summary>
internal sealed class AdannsOptionsValidator : IValidateOptions<AdannsOptions>
{
    public ValidateOptionsResult Validate(string? name, AdannsOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            return ValidateOptionsResult.Fail("Adanns: DataDirectory is required (the directory of the database).");
        return options.ToDatabaseOptions().Problem() is { } p ? ValidateOptionsResult.Fail("Adanns: " + p) : ValidateOptionsResult.Success;
    }
}
