namespace Adanns.Engine;

/// <summary>
/// What went wrong, for callers (and the gRPC layer) that map errors to codes. The values are stable: the server
/// sends the member name in the <c>adanns-error-code</c> trailer (see <see cref="AdannsException.TrailerKey"/>), and
/// new members are only ever added at the end.
/// </summary>
public enum AdannsErrorCode
{
    /// <summary>A vector's length differs from the collection's dimension.</summary>
    WrongDimension = 0,

    /// <summary>A vector has NaN or infinite components.</summary>
    NonFiniteVector = 1,

    /// <summary>A vector is empty.</summary>
    EmptyVector = 2,

    /// <summary>The same id appears twice in one batch.</summary>
    DuplicateId = 3,

    /// <summary>An id is malformed (empty or too long string).</summary>
    InvalidId = 4,

    /// <summary>A payload is larger than the collection allows, or malformed.</summary>
    InvalidPayload = 5,

    /// <summary>A batch is too large for one log entry.</summary>
    BatchTooLarge = 6,

    /// <summary>No collection of that name.</summary>
    CollectionNotFound = 7,

    /// <summary>A collection of that name already exists.</summary>
    CollectionExists = 8,

    /// <summary>The collection's files failed verification when the database opened; it is not served.</summary>
    CollectionQuarantined = 9,

    /// <summary>A collection name or configuration is invalid.</summary>
    InvalidConfiguration = 10,

    /// <summary>A query or search parameter is invalid.</summary>
    InvalidQuery = 11,

    /// <summary>The collection or database was closed or dropped (or is shutting down).</summary>
    Closed = 12,

    /// <summary>A file failed verification (checksum, truncation, bounds) while loading.</summary>
    Corrupt = 13,

    /// <summary>
    /// The collection stopped after an internal failure while running (a failed write to disk, an invariant broken):
    /// it answers reads and writes with this error until the database is reopened. Retrying does not help.
    /// </summary>
    CollectionFaulted = 14,

    /// <summary>Any other invalid argument (a filter, a limit, a field the server checks).</summary>
    InvalidArgument = 15,

    /// <summary>A request is larger than a configured limit.</summary>
    ResourceExhausted = 16,

    /// <summary>Remote only: the server is loading, shutting down or unreachable; retry later.</summary>
    Unavailable = 17,

    /// <summary>Remote only: no API key, or an unknown one.</summary>
    Unauthenticated = 18,

    /// <summary>Remote only: the key may not make this call (the read-only key on a write).</summary>
    PermissionDenied = 19,

    /// <summary>Remote only: the call's deadline passed.</summary>
    DeadlineExceeded = 20,

    /// <summary>Remote only: an unexpected server error (the message carries the correlation id of the server's log line).</summary>
    Internal = 21,

    /// <summary>
    /// The collection's index is behind its writes (a training has not absorbed them yet) by more than
    /// <see cref="Collections.DatabaseOptions.MaxIndexBacklogBytes"/>, and the write waited
    /// <see cref="Collections.DatabaseOptions.BackpressureTimeout"/> for it in vain. Nothing was written: retry after a
    /// pause (gRPC <c>UNAVAILABLE</c>).
    /// </summary>
    Overloaded = 22,
}

/// <summary>
/// An engine error with a <see cref="Code"/>: the only exception type the server maps to a gRPC status other than
/// <c>INTERNAL</c>. Input errors are raised before anything is logged, so a rejected write changes nothing stored.
/// Messages are one line, name the field and the allowed range.
/// </summary>
public class AdannsException : Exception
{
    /// <summary>gRPC trailer (response metadata) carrying <see cref="Code"/>'s member name, e.g. <c>WrongDimension</c>.</summary>
    public const string TrailerKey = "adanns-error-code";

    /// <summary>gRPC trailer carrying <see cref="RecordIndex"/> (decimal), when the error is about one record of a batch.</summary>
    public const string RecordIndexTrailerKey = "adanns-record-index";

    /// <summary>Creates the exception.</summary>
    public AdannsException(AdannsErrorCode code, string message, Exception? inner = null) : base(message, inner) => Code = code;

    /// <summary>Creates the exception for one record of a batch.</summary>
    public AdannsException(AdannsErrorCode code, string message, int recordIndex) : base(message)
    {
        Code = code;
        RecordIndex = recordIndex;
    }

    /// <summary>The kind of error.</summary>
    public AdannsErrorCode Code { get; }

    /// <summary>Index of the offending record in the batch, when the error is about one record.</summary>
    public int? RecordIndex { get; }

    /// <summary>
    /// The message of an argument error without .NET's suffixes (<c> (Parameter 'p')</c> and the
    /// <c>Actual value was …</c> line), so it can be shown to a user as one line.
    /// </summary>
    public static string CleanMessage(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string m = e.Message;
        int nl = m.IndexOfAny(['\r', '\n']);
        if (nl >= 0) m = m[..nl];
        if (e is ArgumentException { ParamName: { Length: > 0 } p })
        {
            string suffix = $" (Parameter '{p}')";
            if (m.EndsWith(suffix, StringComparison.Ordinal)) m = m[..^suffix.Length];
        }
        return m;
    }
}
