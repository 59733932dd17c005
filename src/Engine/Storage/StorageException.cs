namespace Adanns.Engine.Storage;

/// <summary>What went wrong, for callers (and the gRPC layer) that map errors to codes.</summary>
public enum StorageErrorCode
{
    /// <summary>A vector's length differs from the collection's dimension.</summary>
    WrongDimension,

    /// <summary>A vector has NaN or infinite components.</summary>
    NonFiniteVector,

    /// <summary>A vector is empty.</summary>
    EmptyVector,

    /// <summary>The same id appears twice in one batch.</summary>
    DuplicateId,

    /// <summary>An id is malformed (empty or too long string).</summary>
    InvalidId,

    /// <summary>A payload is larger than the collection allows, or malformed.</summary>
    InvalidPayload,

    /// <summary>A batch is too large for one log entry.</summary>
    BatchTooLarge,

    /// <summary>No collection of that name.</summary>
    CollectionNotFound,

    /// <summary>A collection of that name already exists.</summary>
    CollectionExists,

    /// <summary>The collection's files failed verification; it is not served.</summary>
    CollectionQuarantined,

    /// <summary>A collection name or configuration is invalid.</summary>
    InvalidConfiguration,

    /// <summary>A query or search parameter is invalid.</summary>
    InvalidQuery,

    /// <summary>The collection or database was closed or dropped.</summary>
    Closed,

    /// <summary>A file failed verification (checksum, truncation, bounds) while loading.</summary>
    Corrupt,
}

/// <summary>
/// A storage or collection error with a <see cref="Code"/>. Input errors are raised before anything is logged, so
/// a rejected write changes nothing already stored.
/// </summary>
public class StorageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StorageException(StorageErrorCode code, string message, Exception? inner = null) : base(message, inner) => Code = code;

    /// <summary>Creates the exception for one record of a batch.</summary>
    public StorageException(StorageErrorCode code, string message, int recordIndex) : base(message)
    {
        Code = code;
        RecordIndex = recordIndex;
    }

    /// <summary>The kind of error.</summary>
    public StorageErrorCode Code { get; }

    /// <summary>Index of the offending record in the batch, when the error is about one record.</summary>
    public int? RecordIndex { get; }
}
