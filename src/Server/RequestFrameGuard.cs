using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text.Unicode;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;

namespace Adanns.Server;

/// <summary>
/// Checks each gRPC request frame before Grpc.AspNetCore deserializes it, so that two kinds of bad input get a
/// proper status instead of <c>UNKNOWN "Exception was thrown by handler."</c>: a frame that declares more bytes than
/// <see cref="LimitOptions.MaxMessageBytes"/> (gRPC's own check fails with an IOException for lengths above 2³¹−1)
/// answers <c>RESOURCE_EXHAUSTED</c>, and a message whose string fields are not valid UTF-8 (or whose wire format is
/// broken) answers <c>INVALID_ARGUMENT</c> naming the field. It wraps the request body reader: the gRPC reader always
/// consumes whole frames, so every buffer it is handed starts at a frame header.
/// </summary>
internal static class RequestFrameGuard
{
    private const int HeaderSize = 5;

    /// <summary>Request message type of every adanns.v1 method, by HTTP path.</summary>
    private static readonly Dictionary<string, MessageDescriptor> Inputs = Protocol.V1.AdannsReflection.Descriptor.Services
        .SelectMany(s => s.Methods)
        .ToDictionary(m => $"/{m.Service.FullName}/{m.Name}", m => m.InputType, StringComparer.Ordinal);

    /// <summary>Installs the guard on gRPC requests.</summary>
    public static IApplicationBuilder UseRequestFrameGuard(this IApplicationBuilder app, int maxMessageBytes) => app.Use((ctx, next) =>
    {
        if (ctx.Request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase))
        {
            Inputs.TryGetValue(ctx.Request.Path.Value ?? "", out var input);
            ctx.Features.Set<IRequestBodyPipeFeature>(new BodyFeature(new GuardedReader(ctx.Request.BodyReader, input, maxMessageBytes)));
        }
        return next(ctx);
    });

    private sealed class BodyFeature(PipeReader reader) : IRequestBodyPipeFeature
    {
        public PipeReader Reader { get; } = reader;
    }

    private sealed class GuardedReader(PipeReader inner, MessageDescriptor? input, int maxMessageBytes) : PipeReader
    {
        private SequencePosition _start;  // start of the last buffer handed out: a frame header
        private bool _frameChecked;       // that frame's body was validated (it may be handed out again, grown)

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            Check(result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            Check(result.Buffer);
            return true;
        }

        private void Check(in ReadOnlySequence<byte> buffer)
        {
            _start = buffer.Start;
            if (buffer.Length < HeaderSize) return;
            Span<byte> header = stackalloc byte[HeaderSize];
            buffer.Slice(0, HeaderSize).CopyTo(header);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
            if (length > (uint)maxMessageBytes)
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"The request message declares {length} bytes; the server accepts at most {maxMessageBytes} (Adanns:Limits:MaxMessageBytes)."));
            // Compressed frames are checked by the deserializer after decompression (rare: clients send identity).
            if (_frameChecked || input is null || header[0] != 0 || buffer.Length < HeaderSize + length) return;
            _frameChecked = true;
            var reader = new SequenceReader<byte>(buffer.Slice(HeaderSize, length));
            if (FindProblem(ref reader, input, depth: 0) is { } problem)
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"The request is not a valid {input.Name}: {problem}."));
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            // The gRPC reader consumes nothing while a frame is incomplete, and whole frames otherwise.
            if (!consumed.Equals(_start)) _frameChecked = false;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }

    /// <summary>
    /// Walks one message in protobuf wire format and returns what is wrong (a string field that is not UTF-8, a
    /// truncated or malformed field), or null. Fields the descriptor does not know are skipped, as the parser does.
    /// </summary>
    internal static string? FindProblem(ref SequenceReader<byte> r, MessageDescriptor d, int depth)
    {
        if (depth > 64) return "messages are nested too deeply";
        while (!r.End)
        {
            if (!TryReadVarint(ref r, out ulong tag)) return "a field tag is truncated";
            int number = (int)(tag >> 3);
            if (number == 0) return "a field has number 0";
            switch ((int)(tag & 7))
            {
                case 0:
                    if (!TryReadVarint(ref r, out _)) return $"field {number} is truncated";
                    break;
                case 1:
                    if (r.Remaining < 8) return $"field {number} is truncated";
                    r.Advance(8);
                    break;
                case 5:
                    if (r.Remaining < 4) return $"field {number} is truncated";
                    r.Advance(4);
                    break;
                case 2:
                {
                    if (!TryReadVarint(ref r, out ulong len) || len > (ulong)r.Remaining) return $"field {number} is truncated";
                    var field = d.FindFieldByNumber(number);
                    var body = r.Sequence.Slice(r.Position, (long)len);
                    r.Advance((long)len);
                    if (field is null) break;
                    if (field.FieldType == FieldType.String && !IsUtf8(body))
                        return $"field {field.Name} is not valid UTF-8";
                    if (field.FieldType == FieldType.Message)
                    {
                        var inner = new SequenceReader<byte>(body);
                        if (FindProblem(ref inner, field.MessageType, depth + 1) is { } p) return $"{field.Name}: {p}";
                    }
                    break;
                }
                default:
                    return $"field {number} has wire type {tag & 7}, which this API does not use";
            }
        }
        return null;
    }

    private static bool IsUtf8(in ReadOnlySequence<byte> s)
    {
        if (s.IsSingleSegment) return Utf8.IsValid(s.FirstSpan);
        var copy = s.ToArray(); // strings are short (ids, names, payload text); a split one is rare
        return Utf8.IsValid(copy);
    }

    private static bool TryReadVarint(ref SequenceReader<byte> r, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (!r.TryRead(out byte b)) return false;
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }
}
