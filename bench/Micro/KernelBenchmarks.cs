using System.Numerics.Tensors;
using Adanns.Engine;
using Adanns.Engine.Indexes;
using Adanns.Kernels;
using BenchmarkDotNet.Attributes;

namespace Adanns.Bench.Micro;

/// <summary>
/// Kernel micro-benchmarks. Run: <c>dotnet run -c Release --project bench -- micro --filter '*'</c>.
/// MemoryDiagnoser proves the hot paths allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class KernelBenchmarks
{
    private float[] _q = [];
    private float[] _rows = [];
    private float[] _dst = [];
    private float[] _block = [];

    [Params(64, 384)]
    public int D { get; set; }

    private const int N = 1024;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _q = Enumerable.Range(0, 4 * D).Select(_ => (float)rng.NextDouble()).ToArray();
        _rows = Enumerable.Range(0, N * D).Select(_ => (float)rng.NextDouble()).ToArray();
        _dst = new float[N];
        _block = new float[4 * N];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public float PairwiseTensorPrimitivesDot()
    {
        float s = 0;
        for (int j = 0; j < N; j++) s += TensorPrimitives.Dot(_q.AsSpan(0, D), _rows.AsSpan(j * D, D));
        return s;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public float PairwiseVectorMathDot()
    {
        float s = 0;
        for (int j = 0; j < N; j++) s += VectorMath.Dot(_q.AsSpan(0, D), _rows.AsSpan(j * D, D));
        return s;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public void DotRowsOneQuery() => RowKernels.DotRows(_q.AsSpan(0, D), _rows, D, _dst);

    /// <summary>Four queries per call: per-(query,row) cost is the figure to compare.</summary>
    [Benchmark(OperationsPerInvoke = 4 * N)]
    public void DotBlock4Queries() => BlockKernels.DotBlock(_q, D, 4, _rows, D, N, D, _block, N);
}

/// <summary>Single-query flat search: must report 0 B allocated.</summary>
[MemoryDiagnoser]
public class FlatSearchBenchmarks
{
    private VectorSet? _set;
    private FlatIndex? _index;
    private float[] _q = [];
    private readonly long[] _ids = new long[10];
    private readonly float[] _scores = new float[10];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(2);
        const int n = 20_000, d = 128;
        _set = VectorSet.FromRows(Enumerable.Range(0, n * d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), d);
        _index = new FlatIndex(_set, Metric.Cosine);
        _q = Enumerable.Range(0, d).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
    }

    [Benchmark]
    public long SearchCosineFullDim()
    {
        _index!.Search(_q, 10, _ids, _scores, threads: 1);
        return _ids[0];
    }

    [Benchmark]
    public long SearchCosinePrefix32()
    {
        _index!.Search(_q, 10, _ids, _scores, dim: 32, threads: 1);
        return _ids[0];
    }

    [GlobalCleanup]
    public void Cleanup() => _set?.Dispose();
}
