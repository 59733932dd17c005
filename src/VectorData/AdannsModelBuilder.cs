using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Adanns.VectorData;

/// <summary>
/// Builds the record model MEVD-style (attributes or a <see cref="VectorStoreCollectionDefinition"/>) under this
/// store's rules: one key of type <see cref="ulong"/>, <see cref="string"/> or <see cref="Guid"/> (Guid keys may be
/// auto-generated), exactly one vector property (our collections hold one vector per record), data properties of the
/// payload types (<see cref="Payloads.SupportedTypesText"/>).
/// </summary>
internal sealed class AdannsModelBuilder() : CollectionModelBuilder(new CollectionModelBuildingOptions
{
    SupportsMultipleVectors = false,
    RequiresAtLeastOneVector = true,
})
{
    internal static readonly Type[] KeyTypes = [typeof(ulong), typeof(string), typeof(Guid)];

    internal static readonly Type[] VectorTypes = [typeof(ReadOnlyMemory<float>), typeof(ReadOnlyMemory<float>?), typeof(float[]), typeof(Embedding<float>)];

    public static bool IsNativeVectorType(Type type) => VectorTypes.Contains(type);

    protected override bool SupportsKeyAutoGeneration(Type keyPropertyType) => keyPropertyType == typeof(Guid);

    protected override void ValidateKeyProperty(KeyPropertyModel keyProperty)
    {
        ArgumentNullException.ThrowIfNull(keyProperty);
        if (!KeyTypes.Contains(keyProperty.Type))
            throw new NotSupportedException(
                $"Key property '{keyProperty.ModelName}' is a {keyProperty.Type.Name}; the Adanns vector store supports ulong, string and Guid keys.");
        base.ValidateKeyProperty(keyProperty);
    }

    protected override bool IsDataPropertyTypeValid(Type type, out string supportedTypes)
    {
        supportedTypes = Payloads.SupportedTypesText;
        return Payloads.IsSupportedDataType(type);
    }

    protected override bool IsVectorPropertyTypeValid(Type type, out string supportedTypes)
    {
        supportedTypes = "ReadOnlyMemory<float>, ReadOnlyMemory<float>?, float[], Embedding<float>";
        return IsNativeVectorType(type);
    }
}
