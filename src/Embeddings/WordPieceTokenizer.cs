using System.Globalization;
using System.Text;

namespace Adanns.Embeddings;

/// <summary>
/// BERT's uncased WordPiece tokenizer, as the Hugging Face tokenizer of all-MiniLM-L6-v2 runs it: clean the text
/// (drop control characters, map whitespace to spaces), put spaces around CJK ideographs, strip accents (NFD, then
/// drop nonspacing marks), lowercase, split on whitespace and punctuation, then split each word greedily into the
/// longest vocabulary pieces (continuations prefixed <c>##</c>); a word with no split, or over 100 characters,
/// becomes <c>[UNK]</c>. Thread-safe once built.
/// </summary>
public sealed class WordPieceTokenizer
{
    private const int MaxCharsPerWord = 100;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private static readonly Lazy<Dictionary<int, string>> Accents = new(LoadAccents);

    /// <summary>Builds the tokenizer over a vocabulary: one token per line, its id the line number.</summary>
    /// <exception cref="ArgumentException">The vocabulary lacks [PAD], [UNK], [CLS] or [SEP], or repeats a token.</exception>
    public WordPieceTokenizer(IReadOnlyList<string> vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        _vocab = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        for (int i = 0; i < vocabulary.Count; i++)
            if (!_vocab.TryAdd(vocabulary[i], i))
                throw new ArgumentException($"Vocabulary line {i + 1} repeats the token \"{vocabulary[i]}\".", nameof(vocabulary));
        _lookup = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        PadId = Require("[PAD]");
        UnknownId = Require("[UNK]");
        ClsId = Require("[CLS]");
        SepId = Require("[SEP]");
    }

    /// <summary>Tokens in the vocabulary.</summary>
    public int VocabularySize => _vocab.Count;

    /// <summary>Id of [PAD].</summary>
    public int PadId { get; }

    /// <summary>Id of [UNK].</summary>
    public int UnknownId { get; }

    /// <summary>Id of [CLS].</summary>
    public int ClsId { get; }

    /// <summary>Id of [SEP].</summary>
    public int SepId { get; }

    private int Require(string token) =>
        _vocab.TryGetValue(token, out int id) ? id : throw new ArgumentException($"The vocabulary has no {token} token.", "vocabulary");

    /// <summary>
    /// Token ids of <paramref name="text"/> framed as one sequence: [CLS] pieces… [SEP], the pieces cut so that the
    /// whole is at most <paramref name="maxTokens"/> long (as sentence-transformers truncates).
    /// </summary>
    public int[] Encode(string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxTokens < 2) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "maxTokens must be at least 2 ([CLS] and [SEP]).");
        var ids = new List<int>(Math.Min(maxTokens, text.Length / 3 + 4)) { ClsId };
        foreach (string word in PreTokenize(text))
        {
            if (!AppendPieces(word, ids, maxTokens - 1)) break;
        }
        ids.Add(SepId);
        return ids.ToArray();
    }

    /// <summary>The vocabulary pieces of <paramref name="text"/> (no [CLS]/[SEP], no truncation), for inspection.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        var names = new Dictionary<int, string>();
        foreach (var (k, v) in _vocab) names[v] = k;
        var ids = new List<int>();
        foreach (string word in PreTokenize(text)) AppendPieces(word, ids, int.MaxValue);
        return ids.ConvertAll(i => names[i]);
    }

    // Greedy longest-match-first; false once the sequence is full.
    private bool AppendPieces(string word, List<int> ids, int limit)
    {
        if (ids.Count >= limit) return false;
        if (word.Length > MaxCharsPerWord)
        {
            ids.Add(UnknownId);
            return true;
        }
        int mark = ids.Count;
        int start = 0;
        Span<char> buffer = stackalloc char[MaxCharsPerWord + 2];
        while (start < word.Length)
        {
            int end = word.Length;
            int found = -1;
            while (end > start)
            {
                bool hit;
                int id;
                if (start > 0)
                {
                    buffer[0] = '#';
                    buffer[1] = '#';
                    word.AsSpan(start, end - start).CopyTo(buffer[2..]);
                    hit = _lookup.TryGetValue(buffer[..(end - start + 2)], out id);
                }
                else
                {
                    hit = _lookup.TryGetValue(word.AsSpan(start, end - start), out id);
                }
                if (hit)
                {
                    found = id;
                    break;
                }
                end--;
                // Never split a surrogate pair.
                if (end > start && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) end--;
            }
            if (found < 0)
            {
                ids.RemoveRange(mark, ids.Count - mark);
                ids.Add(UnknownId);
                return true;
            }
            ids.Add(found);
            start = end;
        }
        if (ids.Count > limit) ids.RemoveRange(limit, ids.Count - limit);
        return ids.Count < limit;
    }

    /// <summary>The normalised words and punctuation marks of <paramref name="text"/>, in order.</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        var current = new StringBuilder();
        var accents = Accents.Value;
        void Flush()
        {
            if (current.Length > 0)
            {
                words.Add(current.ToString());
                current.Clear();
            }
        }
        foreach (Rune rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune))
            {
                Flush();
                continue;
            }
            if (IsCjk(cp))
            {
                Flush();
                words.Add(rune.ToString());
                continue;
            }
            // Accents first, then lowercase (the order of the Hugging Face BertNormalizer).
            if (accents.TryGetValue(cp, out string? stripped))
            {
                foreach (Rune r in stripped.EnumerateRunes()) AppendLowered(r);
            }
            else if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark)
            {
                AppendLowered(rune);
            }
        }
        Flush();
        return words;

        void AppendLowered(Rune r)
        {
            Rune lower = Rune.ToLowerInvariant(r);
            if (IsPunctuation(lower))
            {
                Flush();
                words.Add(lower.ToString());
            }
            else
            {
                current.Append(lower.ToString());
            }
        }
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate or UnicodeCategory.OtherNotAssigned;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        // BERT treats every non-alphanumeric ASCII symbol as punctuation, e.g. $ ^ ` + < = > | ~.
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    // NFD minus nonspacing marks, per code point (Resources/accents.tsv; Hangul syllables by formula).
    private static Dictionary<int, string> LoadAccents()
    {
        var map = new Dictionary<int, string>(2200 + 11172);
        using var stream = typeof(WordPieceTokenizer).Assembly.GetManifestResourceStream("Adanns.Embeddings.accents.tsv")
            ?? throw new InvalidOperationException("The accents table resource is missing from Adanns.Embeddings.");
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int tab = line.IndexOf('\t');
            int cp = int.Parse(line.AsSpan(0, tab), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var sb = new StringBuilder();
            foreach (var part in line[(tab + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                sb.Append(char.ConvertFromUtf32(int.Parse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            map[cp] = sb.ToString();
        }
        // Hangul syllables decompose into their leading, vowel and trailing jamo (none are marks).
        for (int s = 0; s < 11172; s++)
        {
            int l = 0x1100 + s / 588, v = 0x1161 + s % 588 / 28, t = s % 28;
            map[0xAC00 + s] = t == 0 ? string.Concat((char)l, (char)v) : string.Concat((char)l, (char)v, (char)(0x11A7 + t));
        }
        return map;
    }

    /// <summary>Reads a vocabulary (one token per line, UTF-8).</summary>
    public static string[] ReadVocabulary(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.ToArray();
    }
}
