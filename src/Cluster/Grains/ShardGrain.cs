using Adanns.Engine;
using System.Diagnostics;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Adanns.Cluster;

/// <summary>Durable state of a shard: what it is and where its replicas are.</summary>
[GenerateSerializer]
public sealed class ShardState
{
    [Id(0)] public ClusterCollectionSpec? Spec { get; set; }
    [Id(1)] public int Shard { get; set; }
    [Id(2)] public List<ReplicaInfo> Replicas { get; set; } = [];
}

/// <summary>
/// Sequencer and healer of one shard. Not reentrant: writes, catch-up and transfers of one shard run one at a
/// time, which is what keeps every replica applying the same writes in the same order.
/// </summary>
internal sealed class ShardGrain(
    [PersistentState("shard", ClusterSetup.StorageName)] IPersistentState<ShardState> state,
    IClusterMembershipService membership,
    IOptions<ClusterNodeOptions> options,
    ILogger<ShardGrain> log) : Grain, IShardGrain
{
    // Generous: a dead node is found by membership (seconds) and by its connection failing, not by this timeout;
    // a loaded machine can stall a durable write for seconds.
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    private readonly ClusterNodeOptions _options = options.Value;

    // In memory only: rebuilt from the replicas' positions on activation.
    private bool _ready;
    private long _seq;                                  // last sequence number assigned
    private long _logStart;                             // the log holds every write after this
    private long _logRecords;
    private readonly LinkedList<ShardWrite> _log = new();
    private readonly Dictionary<string, Task> _tails = new(StringComparer.Ordinal);  // per-replica send chain
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private long _lastTransferRecords;
    private double _lastTransferSeconds;

    private ShardState S => state.State;
    private string Name => ShardRouting.ReplicaName(S.Spec!.Config.Name, S.Shard);
    private INodeGrain Node(string node) => GrainFactory.GetGrain<INodeGrain>(node);

    private HashSet<string> AliveNodes()
    {
        var alive = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in membership.CurrentSnapshot.Members.Values)
            if (m.Status == SiloStatus.Active) alive.Add(m.Name);
        return alive;
    }

    public async Task Initialize(ClusterCollectionSpec spec, int shard, string[] nodes)
    {
        if (S.Spec is not null) return;
        string name = ShardRouting.ReplicaName(spec.Config.Name, shard);
        await Task.WhenAll(nodes.Select(n => Node(n).CreateReplica(name, spec.Config).WaitAsync(CallTimeout))).ConfigureAwait(true);
        await Task.WhenAll(nodes.Select(n => Node(n).SetServing(name, true).WaitAsync(CallTimeout))).ConfigureAwait(true);
        state.State = new ShardState { Spec = spec, Shard = shard, Replicas = nodes.Select(n => new ReplicaInfo(n, ReplicaState.Active, 0, null)).ToList() };
        await state.WriteStateAsync().ConfigureAwait(true);
        _seq = _logStart = 0;
        _ready = true;
    }

    private ClusterException NotFound() => new(AdannsErrorCode.CollectionNotFound, $"Shard \"{this.GetPrimaryKeyString()}\" does not exist.");

    /// <summary>
    /// On activation: the shard's sequence is the highest position among its reachable active replicas; active
    /// replicas behind it are caught up before they serve again.
    /// </summary>
    private async Task EnsureReadyAsync()
    {
        if (_ready) return;
        if (S.Spec is null) throw NotFound();
        var alive = AliveNodes();
        var checks = new List<(int Index, Task<ReplicaStatus> Status)>();
        for (int i = 0; i < S.Replicas.Count; i++)
        {
            var r = S.Replicas[i];
            if (r.State == ReplicaState.Active && alive.Contains(r.Node)) checks.Add((i, Node(r.Node).Status(Name).WaitAsync(CallTimeout)));
        }
        long seq = -1;
        var positions = new Dictionary<int, long>();
        foreach (var (i, t) in checks)
        {
            try
            {
                var s = await t.ConfigureAwait(true);
                if (s.Exists)
                {
                    positions[i] = s.Position;
                    seq = Math.Max(seq, s.Position);
                }
            }
            catch (Exception e)
            {
                log.LogInformation("Shard {Shard}: replica on {Node} unreachable at activation: {Error}", Name, S.Replicas[i].Node, e.Message);
            }
        }
        if (seq < 0)
            throw new ClusterException(AdannsErrorCode.Closed, $"Shard {S.Shard} of \"{S.Spec.Config.Name}\" has no live up-to-date replica (replicas on {string.Join(", ", S.Replicas.Select(r => r.Node))}).");
        _seq = _logStart = seq;
        bool changed = false;
        for (int i = 0; i < S.Replicas.Count; i++)
        {
            var r = S.Replicas[i];
            if (r.State != ReplicaState.Active) continue;
            if (positions.TryGetValue(i, out long p) && p == seq)
            {
                _positions[r.Node] = p;
                await Node(r.Node).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
            }
            else
            {
                S.Replicas[i] = r with { State = alive.Contains(r.Node) ? ReplicaState.CatchingUp : ReplicaState.Dead, DeadSinceUtc = DateTime.UtcNow };
                changed = true;
            }
        }
        if (changed) await state.WriteStateAsync().ConfigureAwait(true);
        _ready = true;
        log.LogInformation("Shard {Shard} ready at sequence {Seq}", Name, _seq);
    }

    public async Task<WriteResult> Write(ShardWrite write)
    {
        await EnsureReadyAsync().ConfigureAwait(true);
        var alive = AliveNodes();
        var targets = S.Replicas.Where(r => r.State == ReplicaState.Active && alive.Contains(r.Node)).Select(r => r.Node).ToArray();
        int wc = S.Spec!.WriteConsistency;
        int need = wc == 0 ? Math.Max(1, targets.Length) : wc;
        if (targets.Length < need)
            throw new ClusterException(AdannsErrorCode.Closed,
                $"Shard {S.Shard} of \"{S.Spec.Config.Name}\": write_consistency {need} needs {need} live replica(s); {targets.Length} of {S.Spec.ReplicationFactor} are live.");
        write.First = _seq + 1;
        _seq += write.Count;
        _log.AddLast(write);
        _logRecords += write.Count;
        while (_logRecords > _options.ShardLogRecords && _log.First is { } old)
        {
            _log.RemoveFirst();
            _logRecords -= old.Value.Count;
            _logStart = old.Value.Last;
        }

        var pending = targets.Select(n => Send(n, write)).ToList();
        int acks = 0, failed = 0, deleted = 0;
        ClusterException? rejected = null;
        // write_consistency 0 = every live replica: one that fails meanwhile is marked dead and no longer counted.
        int Needed() => wc == 0 ? Math.Max(1, targets.Length - failed) : wc;
        while (pending.Count > 0 && acks < Needed() && rejected is null)
        {
            var done = await Task.WhenAny(pending).ConfigureAwait(true);
            pending.Remove(done);
            try
            {
                if (await done.ConfigureAwait(true) is { } r)
                {
                    if (acks++ == 0) deleted = r.Deleted;
                }
                else
                {
                    failed++;
                }
            }
            catch (ClusterException e) when (!e.ReplicaFailure)
            {
                rejected = e;
            }
        }
        need = Needed();
        if (rejected is not null) throw rejected;
        if (acks < need)
            throw new ClusterException(AdannsErrorCode.Closed,
                $"Shard {S.Shard} of \"{S.Spec.Config.Name}\": the write reached {acks} replica(s) but write_consistency needs {need}; it may be applied on some replicas.");
        return new WriteResult(deleted, acks);
    }

    /// <summary>Sends a write to one replica after the writes before it; null when the replica failed (it is then
    /// marked dead). Bad input surfaces as a <see cref="ClusterException"/>.</summary>
    private Task<WriteResult?> Send(string node, ShardWrite write)
    {
        var prev = _tails.GetValueOrDefault(node) ?? Task.CompletedTask;
        var task = SendAfter(prev, node, write);
        _tails[node] = task;
        return task;
    }

    private async Task<WriteResult?> SendAfter(Task prev, string node, ShardWrite write)
    {
        try { await prev.ConfigureAwait(true); } catch { /* the earlier send's failure is handled by its own caller */ }
        if (!IsActive(node)) return null;
        try
        {
            var r = await Node(node).Apply(Name, write).WaitAsync(CallTimeout).ConfigureAwait(true);
            _positions[node] = write.Last;
            return r;
        }
        catch (ClusterException e) when (!e.ReplicaFailure)
        {
            _positions[node] = write.Last;
            throw;
        }
        catch (Exception e)
        {
            log.LogWarning("Shard {Shard}: replica on {Node} failed a write ({First}..{Last}): {Error}", Name, node, write.First, write.Last, e.Message);
            await MarkAsync(node, alive: AliveNodes().Contains(node)).ConfigureAwait(true);
            return null;
        }
    }

    private bool IsActive(string node) => S.Replicas.Any(r => r.Node == node && r.State == ReplicaState.Active);

    /// <summary>
    /// The last active replica is never demoted: it holds every acknowledged write, so when its node is down the
    /// shard is unavailable until that node returns (rather than resuming from a replica that may be behind).
    /// </summary>
    private bool IsLastActive(int i) => S.Replicas[i].State == ReplicaState.Active && S.Replicas.Count(r => r.State == ReplicaState.Active) == 1;

    /// <summary>A replica stopped answering or fell out of sync: catching up when its node is up, else dead.</summary>
    private async Task MarkAsync(string node, bool alive)
    {
        int i = S.Replicas.FindIndex(r => r.Node == node && r.State == ReplicaState.Active);
        if (i < 0 || IsLastActive(i)) return;
        S.Replicas[i] = S.Replicas[i] with { State = alive ? ReplicaState.CatchingUp : ReplicaState.Dead, DeadSinceUtc = DateTime.UtcNow };
        try { await Node(node).SetServing(Name, false).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(true); } catch { /* it is down */ }
        await state.WriteStateAsync().ConfigureAwait(true);
    }

    public Task<ShardInfo> Describe()
    {
        if (S.Spec is null) throw NotFound();
        var replicas = S.Replicas.Select(r => r with { Position = _positions.TryGetValue(r.Node, out long p) ? p : -1 }).ToArray();
        return Task.FromResult(new ShardInfo(S.Shard, _ready ? _seq : -1, replicas) { LastTransferRecords = _lastTransferRecords, LastTransferSeconds = _lastTransferSeconds });
    }

    public Task<string[]> ReadReplicas()
    {
        if (S.Spec is null) throw NotFound();
        return Task.FromResult(S.Replicas.Where(r => r.State == ReplicaState.Active).Select(r => r.Node).ToArray());
    }

    public async Task Maintain()
    {
        if (S.Spec is null) return;
        await EnsureReadyAsync().ConfigureAwait(true);
        var alive = AliveNodes();
        bool changed = false;
        for (int i = 0; i < S.Replicas.Count; i++)
        {
            var r = S.Replicas[i];
            switch (r.State)
            {
                case ReplicaState.Active:
                    if (IsLastActive(i) && !alive.Contains(r.Node))
                    {
                        // Nothing to fail over to: wait for the node.
                    }
                    else if (!alive.Contains(r.Node))
                    {
                        S.Replicas[i] = r with { State = ReplicaState.Dead, DeadSinceUtc = DateTime.UtcNow };
                        changed = true;
                        log.LogWarning("Shard {Shard}: node {Node} left the cluster; its replica is dead", Name, r.Node);
                    }
                    else if (_tails.TryGetValue(r.Node, out var tail) && !tail.IsCompleted)
                    {
                        // Writes in flight: its position is not settled yet.
                    }
                    else
                    {
                        ReplicaStatus s;
                        try { s = await Node(r.Node).Status(Name).WaitAsync(CallTimeout).ConfigureAwait(true); }
                        catch (Exception e)
                        {
                            log.LogWarning("Shard {Shard}: replica on {Node} does not answer: {Error}", Name, r.Node, e.Message);
                            if (IsLastActive(i)) break;
                            S.Replicas[i] = r with { State = ReplicaState.Dead, DeadSinceUtc = DateTime.UtcNow };
                            changed = true;
                            break;
                        }
                        if (!s.Exists || s.Position != _seq)
                        {
                            S.Replicas[i] = r with { State = ReplicaState.CatchingUp };
                            changed = true;
                            await CatchUpAsync(i).ConfigureAwait(true);
                        }
                        else if (!s.Serving)
                        {
                            await Node(r.Node).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
                        }
                    }
                    break;
                case ReplicaState.Dead:
                    if (alive.Contains(r.Node))
                    {
                        changed = true;
                        await CatchUpAsync(i).ConfigureAwait(true);
                    }
                    else if (DateTime.UtcNow - (r.DeadSinceUtc ?? DateTime.UtcNow) >= _options.ReReplicateAfter)
                    {
                        changed |= await ReReplicateAsync(i, alive).ConfigureAwait(true);
                    }
                    break;
                case ReplicaState.CatchingUp:
                    changed = true;
                    if (alive.Contains(r.Node)) await CatchUpAsync(i).ConfigureAwait(true);
                    else S.Replicas[i] = r with { State = ReplicaState.Dead, DeadSinceUtc = r.DeadSinceUtc ?? DateTime.UtcNow };
                    break;
                case ReplicaState.Removed:
                    if (alive.Contains(r.Node))
                    {
                        try
                        {
                            await Node(r.Node).DropReplica(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
                            S.Replicas.RemoveAt(i--);
                            changed = true;
                            log.LogInformation("Shard {Shard}: deleted the replaced replica on {Node}", Name, r.Node);
                        }
                        catch (Exception e)
                        {
                            log.LogWarning("Shard {Shard}: could not delete the replaced replica on {Node}: {Error}", Name, r.Node, e.Message);
                        }
                    }
                    break;
            }
        }
        if (changed) await state.WriteStateAsync().ConfigureAwait(true);
    }

    /// <summary>
    /// Brings replica <paramref name="i"/> to the shard's sequence: nothing to do when it is there, the missing
    /// writes from the log when the log still holds them, else a full transfer from an active replica. Then it serves.
    /// </summary>
    private async Task CatchUpAsync(int i)
    {
        var r = S.Replicas[i];
        var node = Node(r.Node);
        try
        {
            await node.SetServing(Name, false).WaitAsync(CallTimeout).ConfigureAwait(true);
        }
        catch (ClusterException)
        {
            // The replica does not exist there (any more): a transfer creates it.
        }
        try
        {
            var s = await node.Status(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
            string how;
            if (s.Exists && s.Position == _seq)
            {
                how = "already current";
            }
            else if (s.Exists && s.Position < _seq && s.Position >= _logStart)
            {
                long records = 0;
                foreach (var w in _log)
                {
                    if (w.Last <= s.Position) continue;
                    try { await node.Apply(Name, w).WaitAsync(CallTimeout).ConfigureAwait(true); }
                    catch (ClusterException e) when (!e.ReplicaFailure) { /* rejected input: rejected here too, sequence kept */ }
                    records += w.Count;
                }
                how = $"log delta of {records} record(s)";
            }
            else
            {
                if (!await TransferAsync(r.Node).ConfigureAwait(true)) return;
                how = $"full transfer of {_lastTransferRecords} record(s) in {_lastTransferSeconds:F2} s";
            }
            await node.SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
            _positions[r.Node] = _seq;
            _tails.Remove(r.Node);
            S.Replicas[i] = r with { State = ReplicaState.Active, DeadSinceUtc = null };
            log.LogInformation("Shard {Shard}: replica on {Node} caught up to {Seq} ({How})", Name, r.Node, _seq, how);
        }
        catch (Exception e)
        {
            log.LogWarning("Shard {Shard}: catching up the replica on {Node} failed: {Error}", Name, r.Node, e.Message);
            S.Replicas[i] = r with { State = ReplicaState.CatchingUp };
        }
    }

    /// <summary>Copies the whole shard from an active replica into a fresh replica on <paramref name="target"/>.</summary>
    private async Task<bool> TransferAsync(string target)
    {
        var alive = AliveNodes();
        var source = S.Replicas.FirstOrDefault(x => x.State == ReplicaState.Active && x.Node != target && alive.Contains(x.Node));
        if (source is null)
        {
            log.LogWarning("Shard {Shard}: no active replica to transfer from", Name);
            return false;
        }
        if (_tails.TryGetValue(source.Node, out var tail)) await tail.ContinueWith(_ => { }, TaskScheduler.Current).ConfigureAwait(true);
        var from = Node(source.Node);
        var to = Node(target);
        var sw = Stopwatch.StartNew();
        await from.Sync(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
        await to.DropReplica(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
        await to.CreateReplica(Name, S.Spec!.Config).WaitAsync(CallTimeout).ConfigureAwait(true);
        var ids = await from.FindIds(Name, null, requireServing: false).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(true);
        int batch = Math.Max(1, _options.TransferBatch);
        Task? importing = null;
        for (int start = 0; start < ids.Length; start += batch)
        {
            var page = ids.AsSpan(start, Math.Min(batch, ids.Length - start)).ToArray();
            var points = await from.Get(Name, page, requireServing: false).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(true);
            // Read the next page while the previous one is written.
            if (importing is not null) await importing.ConfigureAwait(true);
            importing = to.Import(Name, points).WaitAsync(TimeSpan.FromSeconds(60));
        }
        if (importing is not null) await importing.ConfigureAwait(true);
        await to.FinishImport(Name, _seq).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(true);
        _lastTransferRecords = ids.Length;
        _lastTransferSeconds = sw.Elapsed.TotalSeconds;
        return true;
    }

    /// <summary>Replaces dead replica <paramref name="i"/> by a new one on a live node that holds none of this shard.</summary>
    private async Task<bool> ReReplicateAsync(int i, HashSet<string> alive)
    {
        var used = S.Replicas.Where(r => r.State != ReplicaState.Removed).Select(r => r.Node).ToHashSet(StringComparer.Ordinal);
        var candidate = alive.Where(n => !used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).FirstOrDefault();
        if (candidate is null) return false;
        var old = S.Replicas[i];
        log.LogWarning("Shard {Shard}: node {Node} has been gone since {Since:O}; re-replicating onto {Target}", Name, old.Node, old.DeadSinceUtc, candidate);
        if (!await TransferAsync(candidate).ConfigureAwait(true)) return false;
        await Node(candidate).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
        _positions[candidate] = _seq;
        S.Replicas[i] = old with { State = ReplicaState.Removed };
        S.Replicas.Add(new ReplicaInfo(candidate, ReplicaState.Active, _seq, null));
        log.LogInformation("Shard {Shard}: new replica on {Target} ({Records} records in {Seconds:F2} s)", Name, candidate, _lastTransferRecords, _lastTransferSeconds);
        return true;
    }

    public async Task Drop()
    {
        if (S.Spec is null) return;
        var alive = AliveNodes();
        foreach (var r in S.Replicas)
        {
            if (!alive.Contains(r.Node)) continue;
            try { await Node(r.Node).DropReplica(Name).WaitAsync(CallTimeout).ConfigureAwait(true); }
            catch (Exception e) { log.LogWarning("Shard {Shard}: could not drop the replica on {Node}: {Error}", Name, r.Node, e.Message); }
        }
        await state.ClearStateAsync().ConfigureAwait(true);
        state.State = new ShardState();
        _ready = false;
        DeactivateOnIdle();
    }

    public async Task<bool> WaitForIndex()
    {
        await EnsureReadyAsync().ConfigureAwait(true);
        var results = await Task.WhenAll(S.Replicas.Where(r => r.State == ReplicaState.Active).Select(r => Node(r.Node).WaitForIndex(Name))).ConfigureAwait(true);
        return results.All(x => x);
    }

    public async Task Checkpoint()
    {
        await EnsureReadyAsync().ConfigureAwait(true);
        await Task.WhenAll(S.Replicas.Where(r => r.State == ReplicaState.Active).Select(r => Node(r.Node).Checkpoint(Name))).ConfigureAwait(true);
    }
}
