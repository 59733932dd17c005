using System.Collections;
using System.Linq.Expressions;
using Adanns.Engine.Storage;
using Microsoft.Extensions.VectorData.ProviderServices;
using Microsoft.Extensions.VectorData.ProviderServices.Filter;
using EngineFilter = Adanns.Engine.Collections.Filter;
using ProtoFilter = Adanns.Protocol.V1.Filter;
using ProtoFilters = Adanns.Protocol.V1.Filters;

namespace Adanns.VectorData;

/// <summary>
/// A payload condition, independent of where it runs: converted to an engine <see cref="EngineFilter"/> for the
/// embedded store or to an adanns.v1 <see cref="ProtoFilter"/> for the remote one, so both stores filter alike.
/// </summary>
internal abstract record FilterNode
{
    public abstract EngineFilter ToEngine();

    public abstract ProtoFilter ToProto();
}

internal sealed record InNode(string Field, PayloadValue[] Values) : FilterNode
{
    public override EngineFilter ToEngine() => Values.Length == 1 ? EngineFilter.Eq(Field, Values[0]) : EngineFilter.In(Field, Values);

    public override ProtoFilter ToProto() =>
        Values.Length == 1 ? ProtoFilters.Eq(Field, Payloads.ToProto(Values[0])) : ProtoFilters.In(Field, Values.Select(Payloads.ToProto).ToArray());
}

internal sealed record RangeNode(string Field, double? Min, double? Max, bool MinInclusive, bool MaxInclusive) : FilterNode
{
    public override EngineFilter ToEngine() => EngineFilter.Range(Field, Min, Max, MinInclusive, MaxInclusive);

    public override ProtoFilter ToProto() => ProtoFilters.Range(Field,
        gte: MinInclusive ? Min : null, gt: MinInclusive ? null : Min, lte: MaxInclusive ? Max : null, lt: MaxInclusive ? null : Max);
}

internal sealed record AndNode(FilterNode[] Parts) : FilterNode
{
    public override EngineFilter ToEngine() => EngineFilter.And(Parts.Select(p => p.ToEngine()).ToArray());

    public override ProtoFilter ToProto() => ProtoFilters.And(Parts.Select(p => p.ToProto()).ToArray());
}

internal sealed record OrNode(FilterNode[] Parts) : FilterNode
{
    public override EngineFilter ToEngine() => EngineFilter.Or(Parts.Select(p => p.ToEngine()).ToArray());

    public override ProtoFilter ToProto() => ProtoFilters.Or(Parts.Select(p => p.ToProto()).ToArray());
}

internal sealed record NotNode(FilterNode Inner) : FilterNode
{
    public override EngineFilter ToEngine() => EngineFilter.Not(Inner.ToEngine());

    public override ProtoFilter ToProto() => ProtoFilters.Not(Inner.ToProto());
}

/// <summary>
/// Translates an MEVD filter (a LINQ expression over the record type) into a <see cref="FilterNode"/>:
/// <c>==</c>, <c>!=</c>, <c>&lt;</c>, <c>&lt;=</c>, <c>&gt;</c>, <c>&gt;=</c> between a data property and a constant (or
/// captured variable), <c>&amp;&amp;</c>, <c>||</c>, <c>!</c>, a bool property on its own, <c>Contains</c> on a list
/// property (any element equals) and on a constant array or list (the property is one of its values); <c>== null</c> and
/// <c>!= null</c> on data properties (through <see cref="Payloads.NullsField"/>); the key with <c>==</c>, <c>!=</c> and
/// <c>Contains</c> on a constant array (through <see cref="Payloads.KeyField"/>). Anything else throws
/// <see cref="NotSupportedException"/> naming the expression.
/// </summary>
internal sealed class FilterTranslator : FilterTranslatorBase
{
    private readonly CollectionModel _model;

    private FilterTranslator(CollectionModel model) => _model = model;

    /// <summary>The condition, or null when the filter keeps everything (<c>r => true</c>).</summary>
    public static FilterNode? Translate(LambdaExpression? filter, CollectionModel model)
    {
        if (filter is null) return null;
        var t = new FilterTranslator(model);
        var body = t.PreprocessFilter(filter, model, new FilterPreprocessingOptions());
        if (body is ConstantExpression { Value: true }) return null;
        return t.Visit(body);
    }

    private FilterNode Visit(Expression e)
    {
        switch (e)
        {
            case BinaryExpression { NodeType: ExpressionType.AndAlso } b:
                return new AndNode([Visit(b.Left), Visit(b.Right)]);
            case BinaryExpression { NodeType: ExpressionType.OrElse } b:
                return new OrNode([Visit(b.Left), Visit(b.Right)]);
            case UnaryExpression { NodeType: ExpressionType.Not } u:
                return new NotNode(Visit(u.Operand));
            case UnaryExpression { NodeType: ExpressionType.Convert } u when u.Type == typeof(bool) || u.Type == typeof(bool?):
                return Visit(u.Operand);
            case BinaryExpression b when b.NodeType is ExpressionType.Equal or ExpressionType.NotEqual or ExpressionType.LessThan
                or ExpressionType.LessThanOrEqual or ExpressionType.GreaterThan or ExpressionType.GreaterThanOrEqual:
                return Comparison(b);
            case MethodCallExpression call when TryMatchContains(call, out var source, out var item):
                return Contains(call, source, item);
            case MethodCallExpression { Method.Name: "Equals" } call when call.Object is not null && call.Arguments.Count == 1:
                return Comparison(Expression.Equal(call.Object, Expression.Convert(call.Arguments[0], call.Object.Type)));
            default:
                // A bool property by itself: r => r.IsActive.
                if ((e.Type == typeof(bool) || e.Type == typeof(bool?)) && TryBindProperty(e, out var p))
                    return new InNode(Field(p!, e), [PayloadValue.Bool(true)]);
                throw Unsupported(e, "expected comparisons of a data property with a constant, &&, ||, !, or Contains");
        }
    }

    private FilterNode Comparison(BinaryExpression b)
    {
        var op = b.NodeType;
        Expression left = b.Left, right = b.Right;
        if (!TryBindProperty(left, out var property))
        {
            // constant <op> property: mirror the operator.
            if (!TryBindProperty(right, out property)) throw Unsupported(b, "one side must be a data property of the record");
            (left, right) = (right, left);
            op = op switch
            {
                ExpressionType.LessThan => ExpressionType.GreaterThan,
                ExpressionType.LessThanOrEqual => ExpressionType.GreaterThanOrEqual,
                ExpressionType.GreaterThan => ExpressionType.LessThan,
                ExpressionType.GreaterThanOrEqual => ExpressionType.LessThanOrEqual,
                _ => op,
            };
        }
        if (!TryGetConstant(right, out object? value)) throw Unsupported(b, "the other side must be a constant or a captured variable");
        if (property is KeyPropertyModel)
        {
            // Keys are matched through the key text every record carries (Payloads.KeyField).
            if (op is not (ExpressionType.Equal or ExpressionType.NotEqual))
                throw Unsupported(b, $"the key property '{property.ModelName}' can be compared with == and != (or Contains), not ordered");
            FilterNode keyEq = Payloads.KeyText(value, property.Type) is { } text
                ? new InNode(Payloads.KeyField, [PayloadValue.String(text)])
                : value is null ? Nothing() : throw Unsupported(b, $"a {value.GetType().Name} is not a key of type {property.Type.Name}");
            return op == ExpressionType.Equal ? keyEq : new NotNode(keyEq);
        }
        string field = Field(property!, b);
        if (value is null)
        {
            // Null properties are listed in Payloads.NullsField (a null value itself is not stored).
            if (op is not (ExpressionType.Equal or ExpressionType.NotEqual))
                throw Unsupported(b, "<, <=, > and >= with null are always false; compare with == null or != null");
            FilterNode isNull = IsNull(field);
            return op == ExpressionType.Equal ? isNull : new NotNode(isNull);
        }
        if (op is ExpressionType.Equal or ExpressionType.NotEqual)
        {
            var v = Payloads.ToScalar(value) ?? throw Unsupported(b, $"a constant of type {value.GetType().Name} cannot be compared");
            FilterNode eq = new InNode(field, [v]);
            return op == ExpressionType.Equal ? eq : new NotNode(eq);
        }
        if (!Payloads.TryToNumber(value, out double x))
            throw Unsupported(b, $"<, <=, > and >= compare numbers; {value.GetType().Name} is not one");
        return op switch
        {
            ExpressionType.LessThan => new RangeNode(field, null, x, true, false),
            ExpressionType.LessThanOrEqual => new RangeNode(field, null, x, true, true),
            ExpressionType.GreaterThan => new RangeNode(field, x, null, false, true),
            _ => new RangeNode(field, x, null, true, true),
        };
    }

    private FilterNode Contains(MethodCallExpression call, Expression source, Expression item)
    {
        // list property contains a constant: r => r.Tags.Contains("x")
        if (TryBindProperty(source, out var listProperty))
        {
            if (!TryGetConstant(item, out object? value) || Payloads.ToScalar(value) is not { } v)
                throw Unsupported(call, "Contains on a list property needs a constant, non-null element");
            return new InNode(Field(listProperty!, call), [v]);
        }
        // constant array contains the property: r => new[] { "a", "b" }.Contains(r.Color), or the key: ids.Contains(r.Id)
        if (TryBindProperty(item, out var scalarProperty) && TryGetConstant(source, out object? values) && values is IEnumerable list)
        {
            bool isKey = scalarProperty is KeyPropertyModel;
            string field = isKey ? Payloads.KeyField : Field(scalarProperty!, call);
            var items = new List<PayloadValue>();
            bool withNull = false;
            foreach (object? o in list)
            {
                if (o is null)
                {
                    withNull = true;
                    continue;
                }
                items.Add(isKey
                    ? PayloadValue.String(Payloads.KeyText(o, scalarProperty!.Type) ?? throw Unsupported(call, $"the array holds a {o.GetType().Name}, which is not a key of type {scalarProperty.Type.Name}"))
                    : Payloads.ToScalar(o) ?? throw Unsupported(call, $"the array holds a {o.GetType().Name}, which cannot be compared"));
            }
            FilterNode values2 = items.Count == 0 ? Nothing() : new InNode(field, items.Distinct().ToArray());
            // A null in the array matches records whose property is null (keys never are).
            return withNull && !isKey ? new OrNode([values2, IsNull(field)]) : values2;
        }
        throw Unsupported(call, "Contains is supported on a list property with a constant, or on a constant array with a property");
    }

    /// <summary>The data property stored under <paramref name="field"/> is null (listed in <see cref="Payloads.NullsField"/>).</summary>
    private static InNode IsNull(string field) => new(Payloads.NullsField, [PayloadValue.String(field)]);

    /// <summary>Matches no record: k == x &amp;&amp; k != x on the key field every record carries.</summary>
    private static FilterNode Nothing() =>
        new AndNode([new InNode(Payloads.KeyField, [PayloadValue.String("")]), new NotNode(new InNode(Payloads.KeyField, [PayloadValue.String("")]))]);

    private string Field(PropertyModel property, Expression where)
    {
        if (property is KeyPropertyModel)
            throw Unsupported(where, $"the key property '{property.ModelName}' can be compared with == and != or matched with Contains on a constant array only");
        if (property is VectorPropertyModel)
            throw Unsupported(where, $"the vector property '{property.ModelName}' cannot be filtered on");
        return property.StorageName;
    }

    private static bool TryGetConstant(Expression e, out object? value)
    {
        switch (e)
        {
            case ConstantExpression c:
                value = c.Value;
                return true;
            case QueryParameterExpression q:
                value = q.Value;
                return true;
            case UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } u when TryGetConstant(u.Operand, out var inner):
                value = inner;
                return true;
            default:
                // A sub-expression that does not read the record (new Guid(...), Array.Empty<T>(), DateTime.Parse(...)):
                // evaluate it once, here.
                if (!ReadsParameter(e))
                {
                    value = Expression.Lambda(e).Compile(preferInterpretation: true).DynamicInvoke();
                    return true;
                }
                value = null;
                return false;
        }
    }

    private static bool ReadsParameter(Expression e)
    {
        var finder = new ParameterFinder();
        finder.Visit(e);
        return finder.Found;
    }

    private sealed class ParameterFinder : ExpressionVisitor
    {
        public bool Found { get; private set; }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            Found = true;
            return node;
        }
    }

    private NotSupportedException Unsupported(Expression e, string why) =>
        new($"The Adanns vector store cannot translate the filter expression '{e}': {why}.");

    protected override bool TryBindProperty(Expression expression, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out PropertyModel? propertyModel)
    {
        // Strip conversions such as (object)r.Count or (int?)r.Count before binding.
        while (expression is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } u) expression = u.Operand;
        return base.TryBindProperty(expression, out propertyModel);
    }
}
