namespace Adanns.Engine.Indexes;

/// <summary>Decides, during a list scan, whether a vector id may appear in the results (e.g. a payload filter).</summary>
public interface IIdFilter
{
    /// <summary>True when <paramref name="id"/> passes. Called from the searching thread, once per scanned live row.</summary>
    bool Accept(long id);
}
