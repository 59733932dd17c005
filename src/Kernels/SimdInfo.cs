using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>Which SIMD width the kernels run at on this machine (for logs, reports and server info).</summary>
public static class SimdInfo
{
    /// <summary>"vector512" / "vector256" / "vector128" / "scalar": the widest hardware-accelerated vector size.</summary>
    public static string Describe() =>
        Vector512.IsHardwareAccelerated ? "vector512"
        : Vector256.IsHardwareAccelerated ? "vector256"
        : Vector128.IsHardwareAccelerated ? "vector128"
        : "scalar";
}
