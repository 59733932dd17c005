using Adanns.Engine;
using System.Diagnostics;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
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
/// Sequencer and healer of one shard. Reentrant, on the grain's single thread: writes interleave with each other
/// (several batches in flight, each sent to every replica as soon as it has its sequence numbers; replicas apply
/// them in sequence order) and with maintenance, so a catch-up or a full shard transfer does not stop the shard's
/// writes: the replica being brought up receives no writes until it has replayed the log past the transfer and is
/// current, and is made active in the same turn as that check. Maintenance passes do not overlap.
/// </summary>
[Reentrant]
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

    // In memory only: rebuilt from the replicas' positions on activation (the log starts empty then, so a replica
    // that is behind at activation gets a full transfer).
    private bool _ready;
    private Task? _readying;
    private long _seq;                                  // last sequence number assigned
    private long _logStart;                             // the log holds every write after this
    private long _logRecords;
    private readonly LinkedList<ShardWrite> _log = new();
    private readonly List<long> _pins = [];             // positions replays run from: the log keeps what follows them
    private readonly Dictionary<string, int> _inflight = new(StringComparer.Ordinal);   // sends per replica
    private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _fullTransfer = new(StringComparer.Ordinal);        // replicas whose history may differ
    private readonly SemaphoreSlim _saving = new(1, 1);
    private TaskCompletionSource _replicasChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _maintaining;
    private int _writesInFlight, _peakWritesInFlight;
    private bool _transferring;
    private long _writesDuringTransfer;
    private long _lastTransferRecords, _lastTransferWrites;
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

    /// <summary>Writes the grain state; writes from interleaved calls go one at a time (storage etags).</summary>
    private async Task SaveAsync()
    {
        await _saving.WaitAsync().ConfigureAwait(true);
        try { await state.WriteStateAsync().ConfigureAwait(true); }
        finally { _saving.Release(); }
    }

    /// <summary>Wakes writes waiting for acknowledgements: a replica stopped counting.</summary>
    private void ReplicasChanged()
    {
        var old = _replicasChanged;
        _replicasChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.TrySetResult();
    }

    private void SetState(string node, ReplicaState to, DateTime? deadSince)
    {
        int i = S.Replicas.FindIndex(r => r.Node == node && r.State != ReplicaState.Removed);
        if (i < 0) return;
        bool demoted = S.Replicas[i].State == ReplicaState.Active && to != ReplicaState.Active;
        S.Replicas[i] = S.Replicas[i] with { State = to, DeadSinceUtc = deadSince };
        if (demoted) ReplicasChanged();
    }

    public async Task Initialize(ClusterCollectionSpec spec, int shard, string[] nodes)
    {
        if (S.Spec is not null) return;
        string name = ShardRouting.ReplicaName(spec.Config.Name, shard);
        await Task.WhenAll(nodes.Select(n => Node(n).CreateReplica(name, spec.Config).WaitAsync(CallTimeout))).ConfigureAwait(true);
        await Task.WhenAll(nodes.Select(n => Node(n).SetServing(name, true).WaitAsync(CallTimeout))).ConfigureAwait(true);
        state.State = new ShardState { Spec = spec, Shard = shard, Replicas = nodes.Select(n => new ReplicaInfo(n, ReplicaState.Active, 0, null)).ToList() };
        await SaveAsync().ConfigureAwait(true);
        _seq = _logStart = 0;
        _ready = true;
    }

    private ClusterException NotFound() => new(AdannsErrorCode.CollectionNotFound, $"Shard \"{this.GetPrimaryKeyString()}\" does not exist.");

    private Task EnsureReadyAsync()
    {
        if (_ready) return Task.CompletedTask;
        if (S.Spec is null) throw NotFound();
        if (_readying is { IsCompleted: true }) _readying = null;
        return _readying ??= ReadyAsync();
    }

    /// <summary>
    /// On activation: the shard's sequence is the highest position among its reachable active replicas; active
    /// replicas behind it, and every replica that was not active, are brought up by full transfer before they serve
    /// (their history after their last common position with the others is unknown).
    /// </summary>
    private async Task ReadyAsync()
    {
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
        if (_ready) return;
        if (seq < 0)
            throw new ClusterException(AdannsErrorCode.Closed, $"Shard {S.Shard} of \"{S.Spec!.Config.Name}\" has no live up-to-date replica (replicas on {string.Join(", ", S.Replicas.Select(r => r.Node))}).");
        _seq = _logStart = seq;
        bool changed = false;
        var serve = new List<string>();
        for (int i = 0; i < S.Replicas.Count; i++)
        {
            var r = S.Replicas[i];
            if (r.State == ReplicaState.Removed) continue;
            if (r.State == ReplicaState.Active && positions.TryGetValue(i, out long p) && p == seq)
            {
                _positions[r.Node] = p;
                serve.Add(r.Node);
                continue;
            }
            _fullTransfer.Add(r.Node);
            if (r.State == ReplicaState.Active)
            {
                S.Replicas[i] = r with { State = alive.Contains(r.Node) ? ReplicaState.CatchingUp : ReplicaState.Dead, DeadSinceUtc = DateTime.UtcNow };
                changed = true;
            }
        }
        _ready = true;
        log.LogInformation("Shard {Shard} ready at sequence {Seq}", Name, _seq);
        foreach (var n in serve)
        {
            try { await Node(n).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true); }
            catch (Exception e) { log.LogWarning("Shard {Shard}: could not let {Node} serve: {Error}", Name, n, e.Message); }
        }
        if (changed) await SaveAsync().ConfigureAwait(true);
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
        // A copy: the caller's object may be shared (same-silo calls do not copy immutable arguments).
        var w = new ShardWrite { First = _seq + 1, Delete = write.Delete, Points = write.Points, Ids = write.Ids, Wait = write.Wait };
        _seq += w.Count;
        _log.AddLast(w);
        _logRecords += w.Count;
        TrimLog();

        _peakWritesInFlight = Math.Max(_peakWritesInFlight, ++_writesInFlight);
        try
        {
            var pending = new Dictionary<string, Task<WriteResult?>>(StringComparer.Ordinal);
            foreach (var n in targets) pending[n] = Send(n, w);
            int acks = 0, deleted = 0;
            ClusterException? rejected = null;
            while (rejected is null)
            {
                // write_consistency 0 = every live replica: one that fails meanwhile (this write or another one) is
                // demoted and no longer counted.
                int live = pending.Keys.Count(IsActive);
                need = wc == 0 ? Math.Max(1, acks + live) : wc;
                if (acks >= need || acks + pending.Count < need) break;
                var changed = _replicasChanged.Task;
                var done = await Task.WhenAny(pending.Values.Append<Task>(changed)).ConfigureAwait(true);
                if (done == changed) continue;
                var node = pending.First(kv => kv.Value == done).Key;
                pending.Remove(node);
                try
                {
                    if (await ((Task<WriteResult?>)done).ConfigureAwait(true) is { } r)
                    {
                        if (acks++ == 0) deleted = r.Deleted;
                    }
                }
                catch (ClusterException e) when (!e.ReplicaFailure)
                {
                    rejected = e;
                }
            }
            if (rejected is not null) throw rejected;
            if (acks < need)
                throw new ClusterException(AdannsErrorCode.Closed,
                    $"Shard {S.Shard} of \"{S.Spec.Config.Name}\": the write reached {acks} replica(s) but write_consistency needs {need}; it may be applied on some replicas.");
            if (_transferring) _writesDuringTransfer++;
            return new WriteResult(deleted, acks);
        }
        finally
        {
            _writesInFlight--;
        }
    }

    /// <summary>
    /// Drops the oldest writes beyond <see cref="ClusterNodeOptions.ShardLogRecords"/>, except those a running
    /// catch-up still has to replay (up to four times the limit; past that its replay fails and it starts over).
    /// </summary>
    private void TrimLog()
    {
        long pin = _pins.Count == 0 ? long.MaxValue : _pins.Min();
        while (_log.First is { } old && (_logRecords > 4L * _options.ShardLogRecords || (_logRecords > _options.ShardLogRecords && old.Value.Last <= pin)))
        {
            _log.RemoveFirst();
            _logRecords -= old.Value.Count;
            _logStart = old.Value.Last;
        }
    }

    /// <summary>Sends a write to one replica without waiting for the writes before it (the replica applies them in
    /// sequence order); null when the replica failed (it is then demoted). Bad input surfaces as a
    /// <see cref="ClusterException"/>.</summary>
    private async Task<WriteResult?> Send(string node, ShardWrite write)
    {
        _inflight[node] = _inflight.GetValueOrDefault(node) + 1;
        try
        {
            var r = await Node(node).Apply(Name, write).WaitAsync(CallTimeout).ConfigureAwait(true);
            Advanced(node, write.Last);
            return r;
        }
        catch (ClusterException e) when (!e.ReplicaFailure)
        {
            Advanced(node, write.Last);
            throw;
        }
        catch (Exception e)
        {
            log.LogWarning("Shard {Shard}: replica on {Node} failed a write ({First}..{Last}): {Error}", Name, node, write.First, write.Last, e.Message);
            await MarkAsync(node, alive: AliveNodes().Contains(node)).ConfigureAwait(true);
            return null;
        }
        finally
        {
            _inflight[node]--;
        }
    }

    private void Advanced(string node, long position) => _positions[node] = Math.Max(_positions.GetValueOrDefault(node, -1), position);

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
        SetState(node, alive ? ReplicaState.CatchingUp : ReplicaState.Dead, DateTime.UtcNow);
        try { await Node(node).SetServing(Name, false).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(true); } catch { /* it is down */ }
        await SaveAsync().ConfigureAwait(true);
    }

    public Task<ShardInfo> Describe()
    {
        if (S.Spec is null) throw NotFound();
        var replicas = S.Replicas.Select(r => r with { Position = _positions.TryGetValue(r.Node, out long p) ? p : -1 }).ToArray();
        return Task.FromResult(new ShardInfo(S.Shard, _ready ? _seq : -1, replicas)
        {
            LastTransferRecords = _lastTransferRecords, LastTransferSeconds = _lastTransferSeconds, LastTransferWrites = _lastTransferWrites,
            PeakWritesInFlight = _peakWritesInFlight,
        });
    }

    public Task<string[]> ReadReplicas()
    {
        if (S.Spec is null) throw NotFound();
        return Task.FromResult(S.Replicas.Where(r => r.State == ReplicaState.Active).Select(r => r.Node).ToArray());
    }

    public async Task Maintain()
    {
        if (S.Spec is null || _maintaining) return;
        _maintaining = true;
        try
        {
            await EnsureReadyAsync().ConfigureAwait(true);
            await MaintainReplicasAsync().ConfigureAwait(true);
        }
        finally
        {
            _maintaining = false;
        }
    }

    private async Task MaintainReplicasAsync()
    {
        var alive = AliveNodes();
        bool changed = false;
        // Only maintenance adds or removes replicas, and passes do not overlap: the list's order is stable here.
        foreach (var node in S.Replicas.Select(r => r.Node).ToArray())
        {
            var r = S.Replicas.FirstOrDefault(x => x.Node == node && x.State != ReplicaState.Removed) ?? S.Replicas.FirstOrDefault(x => x.Node == node);
            if (r is null) continue;
            int i = S.Replicas.IndexOf(r);
            switch (r.State)
            {
                case ReplicaState.Active:
                    if (IsLastActive(i) && !alive.Contains(node))
                    {
                        // Nothing to fail over to: wait for the node.
                    }
                    else if (!alive.Contains(node))
                    {
                        SetState(node, ReplicaState.Dead, DateTime.UtcNow);
                        changed = true;
                        log.LogWarning("Shard {Shard}: node {Node} left the cluster; its replica is dead", Name, node);
                    }
                    else if (_inflight.GetValueOrDefault(node) == 0)
                    {
                        // No writes in flight to it: it must hold at least every write assigned so far.
                        long expected = _seq;
                        ReplicaStatus s;
                        try { s = await Node(node).Status(Name).WaitAsync(CallTimeout).ConfigureAwait(true); }
                        catch (Exception e)
                        {
                            log.LogWarning("Shard {Shard}: replica on {Node} does not answer: {Error}", Name, node, e.Message);
                            if (!IsActive(node) || IsLastActive(S.Replicas.FindIndex(x => x.Node == node && x.State == ReplicaState.Active))) break;
                            SetState(node, ReplicaState.Dead, DateTime.UtcNow);
                            changed = true;
                            break;
                        }
                        if (!IsActive(node)) break;
                        if (!s.Exists || s.Position < expected)
                        {
                            if (IsLastActive(S.Replicas.FindIndex(x => x.Node == node && x.State == ReplicaState.Active))) break;
                            log.LogWarning("Shard {Shard}: replica on {Node} is at {Position}, the shard at {Seq}; catching it up", Name, node, s.Position, expected);
                            SetState(node, ReplicaState.CatchingUp, DateTime.UtcNow);
                            changed = true;
                            await CatchUpAsync(node).ConfigureAwait(true);
                        }
                        else if (!s.Serving)
                        {
                            await Node(node).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
                        }
                    }
                    break;
                case ReplicaState.Dead:
                    if (alive.Contains(node))
                    {
                        changed = true;
                        await CatchUpAsync(node).ConfigureAwait(true);
                    }
                    else if (DateTime.UtcNow - (r.DeadSinceUtc ?? DateTime.UtcNow) >= _options.ReReplicateAfter)
                    {
                        changed |= await ReReplicateAsync(node, alive).ConfigureAwait(true);
                    }
                    break;
                case ReplicaState.CatchingUp:
                    changed = true;
                    if (alive.Contains(node)) await CatchUpAsync(node).ConfigureAwait(true);
                    else SetState(node, ReplicaState.Dead, r.DeadSinceUtc ?? DateTime.UtcNow);
                    break;
                case ReplicaState.Removed:
                    if (alive.Contains(node))
                    {
                        try
                        {
                            await Node(node).DropReplica(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
                            S.Replicas.Remove(r);
                            changed = true;
                            log.LogInformation("Shard {Shard}: deleted the replaced replica on {Node}", Name, node);
                        }
                        catch (Exception e)
                        {
                            log.LogWarning("Shard {Shard}: could not delete the replaced replica on {Node}: {Error}", Name, node, e.Message);
                        }
                    }
                    break;
            }
        }
        if (changed) await SaveAsync().ConfigureAwait(true);
    }

    /// <summary>
    /// Brings the replica on <paramref name="nodeName"/> (not active, so it receives no writes) to the shard's
    /// sequence: the missing writes from the log when the log still holds them, else a full transfer from an active
    /// replica followed by the writes logged since the transfer began. Writes continue meanwhile; the replica is made
    /// active in the same turn that finds it current, then serves.
    /// </summary>
    private async Task CatchUpAsync(string nodeName)
    {
        var node = Node(nodeName);
        try
        {
            await node.SetServing(Name, false).WaitAsync(CallTimeout).ConfigureAwait(true);
        }
        catch (ClusterException)
        {
            // The replica does not exist there (any more): a transfer creates it.
        }
        long pinned = -1;
        try
        {
            // Sends to it from before its demotion finish first (they may still be applying).
            for (int i = 0; i < 300 && _inflight.GetValueOrDefault(nodeName) > 0; i++) await Task.Delay(100).ConfigureAwait(true);
            var s = await node.Status(Name).WaitAsync(CallTimeout).ConfigureAwait(true);
            string how;
            if (s.Exists && !_fullTransfer.Contains(nodeName) && s.Position >= _logStart && s.Position <= _seq)
            {
                pinned = s.Position;
                _pins.Add(pinned);
                how = $"log delta from {s.Position}";
            }
            else
            {
                pinned = await TransferAsync(nodeName).ConfigureAwait(true);
                if (pinned < 0) return;
                how = $"full transfer of {_lastTransferRecords} record(s) in {_lastTransferSeconds:F2} s ({_lastTransferWrites} write(s) acknowledged meanwhile)";
            }
            long replayed = await ReplayAsync(nodeName, pinned, () =>
            {
                SetState(nodeName, ReplicaState.Active, null);
                _positions[nodeName] = _seq;
                _fullTransfer.Remove(nodeName);
            }).ConfigureAwait(true);
            if (replayed < 0) return;
            await SaveAsync().ConfigureAwait(true);
            await node.SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
            log.LogInformation("Shard {Shard}: replica on {Node} caught up to {Seq} ({How}, then {Replayed} logged record(s))", Name, nodeName, _seq, how, replayed);
        }
        catch (Exception e)
        {
            log.LogWarning("Shard {Shard}: catching up the replica on {Node} failed: {Error}", Name, nodeName, e.Message);
            if (!IsActive(nodeName)) SetState(nodeName, ReplicaState.CatchingUp, DateTime.UtcNow);
        }
        finally
        {
            if (pinned >= 0) _pins.Remove(pinned);
        }
    }

    /// <summary>
    /// Applies the logged writes after <paramref name="from"/> to a replica that holds the shard up to there, until
    /// it holds the whole sequence; then runs <paramref name="activate"/> in that same turn (no write can be assigned
    /// in between). Each round sends every write logged so far at once (the replica applies them in order), so the
    /// replay outpaces writers that keep writing. Returns the records replayed, or −1 when the log no longer reaches
    /// back to where the replica is.
    /// </summary>
    private async Task<long> ReplayAsync(string nodeName, long from, Action activate)
    {
        var node = Node(nodeName);
        long at = from, records = 0;
        while (true)
        {
            if (at == _seq)
            {
                activate();
                return records;
            }
            if (at < _logStart)
            {
                log.LogWarning("Shard {Shard}: the log no longer reaches back to {Position} for {Node}; it gets a full transfer", Name, at, nodeName);
                _fullTransfer.Add(nodeName);
                return -1;
            }
            var round = new List<ShardWrite>();
            for (var e = _log.Last; e is not null && e.Value.Last > at; e = e.Previous) round.Add(e.Value);
            round.Reverse();
            if (round.Count == 0 || round[0].First != at + 1)
                throw new InvalidOperationException($"Shard {Name}: the log has no write starting at {at + 1}.");
            await Task.WhenAll(round.Select(async w =>
            {
                try { await node.Apply(Name, w).WaitAsync(CallTimeout).ConfigureAwait(true); }
                catch (ClusterException e) when (!e.ReplicaFailure) { /* rejected input: rejected here too, sequence kept */ }
            })).ConfigureAwait(true);
            records += round.Sum(w => (long)w.Count);
            at = round[^1].Last;
        }
    }

    /// <summary>
    /// Copies the whole shard from an active replica into a fresh replica on <paramref name="target"/>, while
    /// writes continue: the source first holds every write up to position P (the sequence when the transfer
    /// starts), then its records are read page by page (a record may already reflect a later write), and the
    /// target is left at P with the log pinned from P; the caller replays the writes after P (upserts and deletes
    /// by id applied in order end in the same state). Returns P, or −1 when there is no source.
    /// </summary>
    private async Task<long> TransferAsync(string target)
    {
        var alive = AliveNodes();
        var source = S.Replicas.FirstOrDefault(x => x.State == ReplicaState.Active && x.Node != target && alive.Contains(x.Node));
        if (source is null)
        {
            log.LogWarning("Shard {Shard}: no active replica to transfer from", Name);
            return -1;
        }
        long position = _seq;
        _pins.Add(position);
        var from = Node(source.Node);
        var to = Node(target);
        var sw = Stopwatch.StartNew();
        _transferring = true;
        _writesDuringTransfer = 0;
        try
        {
            await from.Sync(Name, position).WaitAsync(CallTimeout).ConfigureAwait(true);
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
            await to.FinishImport(Name, position).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(true);
            _lastTransferRecords = ids.Length;
            _lastTransferSeconds = sw.Elapsed.TotalSeconds;
            _lastTransferWrites = _writesDuringTransfer;
            return position;
        }
        catch
        {
            _pins.Remove(position);
            throw;
        }
        finally
        {
            _transferring = false;
        }
    }

    /// <summary>Replaces dead replica on <paramref name="deadNode"/> by a new one on a live node that holds none of this shard.</summary>
    private async Task<bool> ReReplicateAsync(string deadNode, HashSet<string> alive)
    {
        // Not a node with a replaced replica either: dropping that one would delete the files of a new one there (same
        // name). Maintenance drops it first; the node is a candidate after that.
        var used = S.Replicas.Select(r => r.Node).ToHashSet(StringComparer.Ordinal);
        var candidate = alive.Where(n => !used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).FirstOrDefault();
        if (candidate is null) return false;
        var old = S.Replicas.First(r => r.Node == deadNode && r.State == ReplicaState.Dead);
        log.LogWarning("Shard {Shard}: node {Node} has been gone since {Since:O}; re-replicating onto {Target}", Name, old.Node, old.DeadSinceUtc, candidate);
        long position = await TransferAsync(candidate).ConfigureAwait(true);
        if (position < 0) return false;
        try
        {
            long replayed = await ReplayAsync(candidate, position, () =>
            {
                int i = S.Replicas.FindIndex(r => r.Node == deadNode && r.State == ReplicaState.Dead);
                if (i >= 0) S.Replicas[i] = S.Replicas[i] with { State = ReplicaState.Removed };
                S.Replicas.Add(new ReplicaInfo(candidate, ReplicaState.Active, _seq, null));
                _positions[candidate] = _seq;
            }).ConfigureAwait(true);
            if (replayed < 0) return false;
            await SaveAsync().ConfigureAwait(true);
            await Node(candidate).SetServing(Name, true).WaitAsync(CallTimeout).ConfigureAwait(true);
            log.LogInformation("Shard {Shard}: new replica on {Target} ({Records} records in {Seconds:F2} s, {Writes} write(s) acknowledged meanwhile, then {Replayed} logged record(s))",
                Name, candidate, _lastTransferRecords, _lastTransferSeconds, _lastTransferWrites, replayed);
            return true;
        }
        finally
        {
            _pins.Remove(position);
        }
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
        await _saving.WaitAsync().ConfigureAwait(true);
        try { await state.ClearStateAsync().ConfigureAwait(true); }
        finally { _saving.Release(); }
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
