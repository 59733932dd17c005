using Adanns.Kernels;
using BenchmarkDotNet.Attributes;

namespace Adanns.Bench.Micro;

/// <summary>
/// Code scans per code at equal bytes: 8-bit PQ table lookups (<see cref="PqKernels.Scan"/>, M bytes = M lookups)
/// against the 4-bit fast scan (<see cref="FastScanKernels.Scan"/>, M bytes = 2M sub-quantizers). The codes fit L2, as
/// the probed lists of one query do. Run: <c>dotnet run -c Release --project bench -- micro --filter '*PqScan*'</c>.
/// </summary>
[MemoryDiagnoser]
public class PqScanBenchmarks
{
    private const int N = 4096;
    private byte[] _codes8 = [], _packed4 = [], _table8 = [];
    private float[] _lut8 = [], _dist = [];
    private ushort[] _sums = [];

    /// <summary>Bytes per code.</summary>
    [Params(16, 32, 48)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        int m8 = Bytes, m4 = 2 * Bytes;
        _codes8 = new byte[N * m8];
        rng.NextBytes(_codes8);
        _lut8 = Enumerable.Range(0, m8 * PqKernels.Ksub).Select(_ => (float)rng.NextDouble()).ToArray();
        _dist = new float[N];
        _packed4 = new byte[FastScanKernels.Blocks(N) * FastScanKernels.BlockBytes(m4)];
        var code = new byte[m4];
        for (int i = 0; i < N; i++)
        {
            for (int j = 0; j < m4; j++) code[j] = (byte)rng.Next(16);
            FastScanKernels.WriteCode(_packed4, m4, i, code);
        }
        var lut4 = Enumerable.Range(0, m4 * FastScanKernels.Ksub).Select(_ => (float)rng.NextDouble()).ToArray();
        _table8 = new byte[FastScanKernels.TableBytes(m4)];
        FastScanKernels.QuantizeTable(lut4, m4, _table8, out _);
        _sums = new ushort[N];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void Adc8Bit() => PqKernels.Scan(_codes8, Bytes, _lut8, _dist);

    [Benchmark(OperationsPerInvoke = N)]
    public void FastScan4Bit() => FastScanKernels.Scan(_packed4, 2 * Bytes, N / FastScanKernels.BlockRows, _table8, _sums);
}

/// <summary>
/// Probe ranking: one query against 2,048 centroids of 128 dims — float interleaved tiles, the same as 8-bit codes
/// decoded to float, and 8-bit codes with an int8 query (Int8Kernels: AVX-VNNI, else AVX-512BW / AVX2). Per centroid.
/// </summary>
[MemoryDiagnoser]
public class CoarseRankBenchmarks
{
    private const int NList = 2048, D = 128;
    private float[] _q = [], _table = [], _dots = [], _norms = [], _step = [];
    private byte[] _codes = [], _packed = [];
    private sbyte[] _qi = [];
    private int[] _sums = [];
    private TileLayout _layout;
    private int _blocks;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        _blocks = NList / InterleavedKernels.BlockRows;
        _layout = TileLayout.GroupMajor(_blocks);
        _q = Enumerable.Range(0, D).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _table = new float[InterleavedKernels.Groups(D) * InterleavedKernels.GroupStride(_blocks)];
        _codes = new byte[_table.Length];
        var rows = new byte[NList * D];
        rng.NextBytes(rows);
        var row = new float[D];
        for (int l = 0; l < NList; l++)
        {
            for (int j = 0; j < D; j++) row[j] = rows[l * D + j] / 255f;
            InterleavedKernels.WriteRow(_table, _layout, l, row);
            InterleavedKernels.WriteRow(_codes, _layout, l, rows.AsSpan(l * D, D));
        }
        _packed = new byte[Int8Kernels.PackedBytes(NList, D)];
        Int8Kernels.Pack(rows, NList, D, _packed);
        _qi = new sbyte[D];
        Int8Kernels.Quantize(_q, _qi);
        _step = Enumerable.Repeat(1f / 255, D).ToArray();
        _dots = new float[NList];
        _norms = new float[NList];
        _sums = new int[NList];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = NList)]
    public void FloatTable() => InterleavedKernels.Dot(_q, _table, _layout, _blocks, _dots, _norms);

    [Benchmark(OperationsPerInvoke = NList)]
    public void EightBitDecoded() => InterleavedKernels.DotU8(_q, default, default, _codes, _layout, _blocks, _dots, default);

    /// <summary>The int8 kernel alone (AVX-VNNI, else AVX-512BW / AVX2 widening: <see cref="Int8Kernels.Path"/>).</summary>
    [Benchmark(OperationsPerInvoke = NList)]
    public void EightBitInt8() => Int8Kernels.Dot(_qi, _packed, NList, D, _sums);

    /// <summary>Everything IvfIndex's int8 ranking adds to the kernel: the query rounded to int8, sums to scaled floats.</summary>
    [Benchmark(OperationsPerInvoke = NList)]
    public void EightBitInt8Ranked()
    {
        float scale = Int8Kernels.Quantize(_q, _qi);
        Int8Kernels.Dot(_qi, _packed, NList, D, _sums);
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<int, float>(_sums, _dots);
        System.Numerics.Tensors.TensorPrimitives.Multiply(_dots, 1f / scale, _dots);
    }
}

/// <summary>
/// Choosing nprobe = 192 of 2,048 centroid keys (random order): every key pushed through a reservoir, against
/// <see cref="TopKReservoir.SelectSmallest"/> (a sampled threshold, one vectorised pass, one quickselect). Per key.
/// </summary>
[MemoryDiagnoser]
public class ProbeSelectionBenchmarks
{
    private const int N = 2048, K = 192;
    private float[] _keys = [], _outKeys = [];
    private int[] _outIds = [];
    private ulong[] _buffer = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(7);
        _keys = Enumerable.Range(0, N).Select(_ => (float)rng.NextDouble()).ToArray();
        _outKeys = new float[K];
        _outIds = new int[K];
        _buffer = new ulong[N + 1];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int Reservoir()
    {
        var r = new TopKReservoir(K, _buffer.AsSpan(0, 2 * K));
        for (int i = 0; i < N; i++) r.Push(_keys[i], i);
        return r.TakeUnsorted(_outKeys, _outIds);
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int SampledThreshold() => TopKReservoir.SelectSmallest(_keys, K, _buffer, _outKeys, _outIds);
}

/// <summary>
/// The query rotation of a <c>Rot</c> index at D = 384, per query: one matrix-vector product (single-query search)
/// against groups of 32 queries as one matrix product (batch search).
/// </summary>
[MemoryDiagnoser]
public class QueryRotationBenchmarks
{
    private const int D = 384, Group = 32;
    private Adanns.Engine.Transforms.RotationTransform _rotation = null!;
    private float[] _queries = [], _out = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        using var sample = new Adanns.Engine.VectorSet(D, 2000);
        var row = new float[D];
        for (int i = 0; i < 2000; i++)
        {
            for (int j = 0; j < D; j++) row[j] = (float)(rng.NextDouble() - 0.5) / (1 + j);
            sample.Add(row);
        }
        _rotation = Adanns.Engine.Transforms.RotationTransform.Learn(sample);
        _queries = Enumerable.Range(0, Group * D).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _out = new float[Group * D];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Group)]
    public void OneAtATime()
    {
        for (int i = 0; i < Group; i++) _rotation.Apply(_queries.AsSpan(i * D, D), _out.AsSpan(i * D, D));
    }

    [Benchmark(OperationsPerInvoke = Group)]
    public void GroupOf32() => _rotation.ApplyBatch(_queries, _out);
}
