using Adanns.Bench;

if (args.Length > 0 && args[0] == "micro")
{
    // BenchmarkDotNet micro-benchmarks of the kernels and hot paths; the remaining args go to its switcher.
    BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args[1..]);
    return 0;
}

// A process that dies of an unhandled exception says which thread and where (the runtime prints only "Out of memory."
// for an unhandled OutOfMemoryException), with the GC's view of memory at that moment.
AppDomain.CurrentDomain.UnhandledException += (_, e) =>
{
    var gc = GC.GetGCMemoryInfo();
    Console.Error.WriteLine($"unhandled exception on thread '{Thread.CurrentThread.Name}' ({Environment.CurrentManagedThreadId}); GC heap {gc.HeapSizeBytes >> 20} MiB, committed {gc.TotalCommittedBytes >> 20} MiB, " +
        $"available {gc.TotalAvailableMemoryBytes >> 20} MiB, memory load {gc.MemoryLoadBytes >> 20} MiB, working set {Environment.WorkingSet >> 20} MiB:{Environment.NewLine}{e.ExceptionObject}");
};
try
{
    if (args.Length > 0 && args[0] == "gen-synth")
        return SynthCommand.Run(args[1..]);
    if (args.Length > 0 && args[0] == "store")
        return StoreCommand.Run(args[1..]);
    if (args.Length > 0 && args[0] == "convert")
        return ConvertCommand.Run(args[1..]);
    if (args.Length > 0 && args[0] == "gpu")
        return GpuCommand.Run(args[1..]);
    if (args.Length > 0 && args[0] == "load")
        return await LoadCommand.RunAsync(args[1..]);
    if (args.Length > 0 && args[0] == "api-overhead")
        return await ApiOverheadCommand.RunAsync(args[1..]);
    if (args.Length > 0 && args[0] == "fuzz")
        return await FuzzCommand.RunAsync(args[1..]);
    if (args.Length > 0 && args[0] == "text")
        return await TextCommand.RunAsync(args[1..]);
    if (args.Length > 0 && args[0] == "cluster")
        return await ClusterCommand.RunAsync(args[1..]);
    var options = BenchOptions.Parse(args);
    if (options.ShowHelp)
    {
        Console.WriteLine(BenchOptions.Help);
        return 0;
    }
    return Harness.Run(options);
}
catch (Exception e) when (e is ArgumentException or Adanns.Kernels.Gpu.GpuException or Adanns.Engine.IO.DatasetFormatException or FileNotFoundException or DirectoryNotFoundException
    or Grpc.Core.RpcException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
