using System.Globalization;
using Adanns.Engine.IO;

namespace Adanns.Bench;

/// <summary><c>convert</c>: rewrites a vector or id file in another format (e.g. Fashion-MNIST IDX → fvecs for peers).</summary>
internal static class ConvertCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- convert IN OUT [--ints] [--limit N]
        Reads IN in any supported format and writes OUT in the format its extension names
        (.fvecs .bvecs .fbin .u8bin .npy .ivecs .ibin .hdf5 .idx[.gz]). --ints converts id / label files.
        """;

    public static int Run(string[] args)
    {
        var paths = new List<string>();
        bool ints = false;
        int? limit = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--ints": ints = true; break;
                case "--limit":
                    if (i + 1 >= args.Length || !int.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n <= 0)
                        throw new ArgumentException("--limit needs a positive integer.");
                    limit = n;
                    break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: paths.Add(args[i]); break;
            }
        }
        if (paths.Count != 2) throw new ArgumentException($"convert needs IN and OUT.\n{Help}");
        if (ints)
        {
            var m = VectorFile.ReadInts(paths[0], limit);
            VectorFile.WriteInts(paths[1], m);
            Console.WriteLine($"{paths[0]} → {paths[1]}: {m.Rows} × {m.Cols} ints");
        }
        else
        {
            using var v = VectorFile.ReadVectors(paths[0], limit);
            VectorFile.WriteVectors(paths[1], v);
            Console.WriteLine($"{paths[0]} → {paths[1]}: {v.Count} × {v.Dimension} floats");
        }
        return 0;
    }
}
