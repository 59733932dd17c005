using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Adanns.Kernels;

/// <summary>float16 → float32 conversion for half-precision inputs (files, client payloads).</summary>
public static class HalfConversion
{
    /// <summary>Converts every element of <paramref name="source"/> into <paramref name="destination"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        if (source.Length != destination.Length)
            throw new ArgumentException($"Source has {source.Length} halves; destination has {destination.Length} floats.");
        // TensorPrimitives vectorises this with F16C / AVX-512 conversions where available.
        TensorPrimitives.ConvertToSingle(source, destination);
    }

    /// <summary>Converts little-endian IEEE binary16 bytes (2 per value) into floats.</summary>
    public static void ToSingle(ReadOnlySpan<byte> littleEndianHalves, Span<float> destination)
    {
        if (littleEndianHalves.Length != 2 * destination.Length)
            throw new ArgumentException($"{littleEndianHalves.Length} bytes cannot hold {destination.Length} halves.");
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Half-precision input is only supported on little-endian machines.");
        ToSingle(MemoryMarshal.Cast<byte, Half>(littleEndianHalves), destination);
    }

    /// <summary>Converts floats to float16 (round to nearest even).</summary>
    public static void ToHalf(ReadOnlySpan<float> source, Span<Half> destination)
    {
        if (source.Length != destination.Length)
            throw new ArgumentException($"Source has {source.Length} floats; destination has {destination.Length} halves.");
        TensorPrimitives.ConvertToHalf(source, destination);
    }
}
