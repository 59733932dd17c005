using System.Globalization;
using Google.Rpc;
using Grpc.Core;

namespace Adanns.Protocol.V1;

/// <summary>
/// The engine's error code in gRPC rich status details: the standard <c>grpc-status-details-bin</c> trailer holds a
/// <c>google.rpc.Status</c> (the call's status code and message) whose details carry one <c>google.rpc.ErrorInfo</c>
/// { reason = the <c>AdannsErrorCode</c> member name, e.g. <c>WrongDimension</c>; domain = <see cref="Domain"/>;
/// metadata <see cref="RecordIndexKey"/> = the offending record of a batch, when there is one }.
/// </summary>
public static class ErrorDetails
{
    /// <summary>The <c>ErrorInfo.domain</c> of the engine's errors.</summary>
    public const string Domain = "adanns.v1";

    /// <summary>The <c>ErrorInfo.metadata</c> key of the offending record's index in a batch (decimal).</summary>
    public const string RecordIndexKey = "record_index";

    /// <summary>Adds the <c>grpc-status-details-bin</c> trailer describing an engine error to <paramref name="trailers"/>.</summary>
    public static void Add(Metadata trailers, StatusCode status, string message, string reason, int? recordIndex)
    {
        ArgumentNullException.ThrowIfNull(trailers);
        var info = new ErrorInfo { Reason = reason, Domain = Domain };
        if (recordIndex is int i) info.Metadata.Add(RecordIndexKey, i.ToString(CultureInfo.InvariantCulture));
        trailers.SetRpcStatus(new Google.Rpc.Status
        {
            Code = (int)status,
            Message = message,
            Details = { Google.Protobuf.WellKnownTypes.Any.Pack(info) },
        });
    }

    /// <summary>
    /// The engine error described by the call's status details, when it carries an <c>ErrorInfo</c> of
    /// <see cref="Domain"/>: its reason (the error code's name) and record index. False when there is none
    /// (or the trailer does not parse).
    /// </summary>
    public static bool TryRead(RpcException e, out string reason, out int? recordIndex)
    {
        ArgumentNullException.ThrowIfNull(e);
        reason = "";
        recordIndex = null;
        if (e.Trailers.GetRpcStatus(ignoreParseError: true) is not { } status) return false;
        ErrorInfo? info;
        try
        {
            info = status.Details.Where(a => a.Is(ErrorInfo.Descriptor)).Select(a => a.Unpack<ErrorInfo>()).FirstOrDefault(i => i.Domain == Domain);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return false;
        }
        if (info is null || info.Reason.Length == 0) return false;
        reason = info.Reason;
        if (info.Metadata.TryGetValue(RecordIndexKey, out var s) && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int at))
            recordIndex = at;
        return true;
    }
}
