using System.Text.Json;
using OnDevice.Delivery;
using OnDevice.Server.Storage;

namespace OnDevice.Server.Rollouts;

/// <summary>
/// Staged rollouts: starting them, the operator actions, the engine's periodic step (advance on schedule when health
/// allows, halt a device class on a failed guard) and the assignment a device asks for. Every change runs in the
/// store's locked transaction, re-reads the rollout there, and lands in the audit log and the decisions table.
/// </summary>
public sealed class RolloutService(IDeliveryStore store, DeliveryRepository repo, IRolloutHealth health, TimeProvider time, ServerOptions options, ILogger<RolloutService> log)
{
    private const int MaxRemembered = 200_000;
    // Rollout and class states per model/channel, read again after ServerOptions.TimestampCache (other replicas'
    // changes show within that time; this replica's own changes drop the cache at once).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Model, string Channel), CachedRollout> _cache = new();
    // What each install was last recorded with, so that repeated polls with the same answer do not write.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(long Rollout, string Install), (string Class, string? Version, bool InCohort)> _recorded = new();

    private sealed record CachedRollout(DateTimeOffset FetchedAt, RolloutRow? Rollout, IReadOnlyList<RolloutClassRow> Classes);

    /// <summary>The channel devices and operators get when they name none.</summary>
    public const string DefaultChannel = "stable";

    private static readonly JsonSerializerOptions Web = new(JsonSerializerOptions.Web);

    /// <summary>Starts a rollout (400 bad input, 404 unknown model or version, 409 another rollout is running).</summary>
    public async Task<RolloutView> StartAsync(StartRolloutRequest request, string actor, CancellationToken cancellationToken = default)
    {
        var model = request.Model ?? throw new RepositoryException(400, "model is required");
        var version = request.Version ?? throw new RepositoryException(400, "version is required");
        var channel = CheckChannel(request.Channel);
        Segment("model name", model);
        Segment("version", version);
        var scheduleText = request.Schedule is null || request.Schedule.Trim().Equals("apple", StringComparison.OrdinalIgnoreCase)
            ? RolloutSchedule.ApplePhased.ToString() : request.Schedule;
        RolloutSchedule schedule;
        try { schedule = RolloutSchedule.Parse(scheduleText); }
        catch (FormatException e) { throw new RepositoryException(400, $"schedule: {e.Message}"); }
        var onFailure = (request.OnFailure ?? "pause").Trim().ToLowerInvariant();
        if (onFailure is not ("pause" or "rollback")) throw new RepositoryException(400, $"on_failure must be pause or rollback, not '{request.OnFailure}'");
        var guards = (request.Guards ?? []).Select(g => g?.Trim() ?? "").ToList();
        foreach (var g in guards)
        {
            if (g.Length == 0) throw new RepositoryException(400, "a guard rule is empty");
            try { health.ValidateRule(g); }
            catch (ArgumentException e) { throw new RepositoryException(400, $"guard '{g}': {e.Message}"); }
        }

        var versions = await PublishedVersionsAsync(model, cancellationToken);
        if (!versions.Contains(version))
            throw new RepositoryException(404, $"{model} has no published version {version} (published: {string.Join(", ", versions)})");
        if (request.Baseline is { } b)
        {
            Segment("baseline", b);
            if (!versions.Contains(b)) throw new RepositoryException(404, $"{model} has no published version {b} to use as the baseline");
            if (b == version) throw new RepositoryException(400, $"the baseline must differ from the candidate {version}");
        }

        var now = time.GetUtcNow();
        var id = await store.InTransactionAsync(async tx =>
        {
            if (await tx.LatestRolloutAsync(model, channel, RolloutStatus.Active, RolloutStatus.Paused) is { } running)
                throw new RepositoryException(409, $"rollout {running.Id} of {model} {running.Candidate} on channel {channel} is {running.Status}; abort or roll it back first");
            var baseline = request.Baseline;
            if (baseline is null)
            {
                var done = await tx.LatestRolloutAsync(model, channel, RolloutStatus.Completed);
                baseline = done is not null && done.Candidate != version && versions.Contains(done.Candidate) ? done.Candidate
                    : versions.Where(v => ModelVersion.Compare(v, version) < 0).OrderByDescending(v => v, ModelVersion.Comparer).FirstOrDefault();
            }
            bool complete = schedule.Stages.Count == 1 && schedule.Stages[0].BasisPoints == Cohort.Buckets;
            var row = new RolloutRow(0, model, channel, version, baseline, schedule.ToString(), guards, onFailure,
                complete ? RolloutStatus.Completed : RolloutStatus.Active, 0, now, now, now, actor, complete ? "started at 100%" : "started");
            var newId = await tx.InsertRolloutAsync(row);
            var details = Json(new { model, channel, candidate = version, baseline, schedule = row.Schedule, guards, onFailure });
            await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, newId, now, actor, "start", null, 0, schedule.Stages[0].BasisPoints, "start", details));
            await tx.AuditAsync(actor, "rollout.start", Subject(newId, model, channel), details);
            return newId;
        }, cancellationToken);
        _cache.Clear();
        return await GetAsync(id, cancellationToken) ?? throw new RepositoryException(500, "the new rollout vanished");
    }

    /// <summary>An operator action: pause, resume, advance, abort or rollback (fast: skips analysis).</summary>
    public async Task<RolloutView> ActAsync(long id, string action, RolloutActionRequest request, string actor, CancellationToken cancellationToken = default)
    {
        action = action.ToLowerInvariant();
        if (action is not ("pause" or "resume" or "advance" or "abort" or "rollback"))
            throw new RepositoryException(404, $"unknown rollout action '{action}' (pause, resume, advance, abort, rollback)");
        var cls = request.DeviceClass;
        if (cls is not null)
        {
            try { DeviceClasses.Validate(cls); }
            catch (MalformedMetadataException e) { throw new RepositoryException(400, e.Message); }
            if (action is "advance" or "abort") throw new RepositoryException(400, $"{action} applies to the whole rollout, not to one device class");
        }
        var now = time.GetUtcNow();
        await store.InTransactionAsync(async tx =>
        {
            var r = await tx.RolloutAsync(id) ?? throw new RepositoryException(404, $"no rollout {id}");
            var schedule = RolloutSchedule.Parse(r.Schedule);
            var stage = r.Stage;
            var status = r.Status;
            var stageStarted = r.StageStarted;
            var reason = request.Reason is { Length: > 0 } t ? $"{action} by {actor}: {t}" : $"{action} by {actor}";
            var classes = await tx.RolloutClassesAsync(id);
            if (cls is not null)
            {
                var current = classes.FirstOrDefault(c => c.DeviceClass == cls)?.State ?? ClassState.Active;
                if (r.Status is RolloutStatus.Aborted or RolloutStatus.RolledBack)
                    throw new RepositoryException(409, $"rollout {id} is {r.Status}; its device classes cannot change");
                var target = action switch { "pause" => ClassState.Paused, "resume" => ClassState.Active, _ => ClassState.RolledBack };
                if (current == target) throw new RepositoryException(409, $"device class {cls} of rollout {id} is already {current}");
                await tx.UpsertRolloutClassAsync(new RolloutClassRow(id, cls, target, reason, now, actor));
            }
            else
            {
                switch (action)
                {
                    case "pause":
                        if (status != RolloutStatus.Active) throw new RepositoryException(409, $"rollout {id} is {status}, only an active rollout can be paused");
                        status = RolloutStatus.Paused;
                        break;
                    case "resume":
                        if (status != RolloutStatus.Paused) throw new RepositoryException(409, $"rollout {id} is {status}, only a paused rollout can be resumed");
                        status = RolloutStatus.Active;
                        stageStarted = now; // the current stage's clock and health window start again
                        foreach (var c in classes.Where(c => c.State == ClassState.Paused))
                            await tx.UpsertRolloutClassAsync(c with { State = ClassState.Active, Reason = reason, At = now, Actor = actor });
                        break;
                    case "advance":
                        if (status is not (RolloutStatus.Active or RolloutStatus.Paused)) throw new RepositoryException(409, $"rollout {id} is {status}; only an active or paused rollout can advance");
                        if (stage + 1 >= schedule.Stages.Count) throw new RepositoryException(409, $"rollout {id} is at its last stage ({schedule.Stages[stage]})");
                        stage++;
                        stageStarted = now;
                        if (IsFinalFullStage(schedule, stage)) status = RolloutStatus.Completed;
                        break;
                    case "abort":
                        if (RolloutStatus.IsFinal(status)) throw new RepositoryException(409, $"rollout {id} is already {status}");
                        status = RolloutStatus.Aborted;
                        break;
                    case "rollback":
                        if (status is RolloutStatus.RolledBack or RolloutStatus.Aborted) throw new RepositoryException(409, $"rollout {id} is already {status}");
                        if (r.Baseline is null) throw new RepositoryException(409, $"rollout {id} of {r.Model} {r.Candidate} has no last good version to return to; abort it instead");
                        status = RolloutStatus.RolledBack;
                        break;
                }
                await tx.UpdateRolloutAsync(id, status, stage, stageStarted, now, reason);
            }
            var details = Json(new { action, deviceClass = cls, reason = request.Reason, fromStatus = r.Status, toStatus = status, fromStage = r.Stage, toStage = stage,
                fromPercent = Percent(schedule, r.Stage), toPercent = Percent(schedule, stage) });
            await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, id, now, actor, "operator-" + action, cls, stage, schedule.Stages[stage].BasisPoints, "operator-" + action, details));
            await tx.AuditAsync(actor, "rollout." + action, Subject(id, r.Model, r.Channel) + (cls is null ? "" : $" class {cls}"), details);
            return 0;
        }, cancellationToken);
        _cache.Clear();
        return (await GetAsync(id, cancellationToken))!;
    }

    /// <summary>One engine step over every active rollout; returns how many rollouts changed.</summary>
    public async Task<int> TickAsync(CancellationToken cancellationToken = default)
    {
        int changed = 0;
        foreach (var r in await store.ListActiveRolloutsAsync(cancellationToken))
        {
            try
            {
                if (await StepAsync(r, cancellationToken))
                {
                    changed++;
                    _cache.Clear();
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning(e, "rollout {Id} step failed", r.Id);
            }
        }
        return changed;
    }

    private async Task<bool> StepAsync(RolloutRow seen, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var schedule = RolloutSchedule.Parse(seen.Schedule);
        IReadOnlyList<GuardOutcome> outcomes = seen.Guards.Count == 0 ? [] :
            await health.EvaluateAsync(new HealthQuery(seen.Model, seen.Candidate, seen.Baseline, seen.Guards, seen.StageStarted, now), ct);
        return await store.InTransactionAsync(async tx =>
        {
            var r = await tx.RolloutAsync(seen.Id);
            // Another replica or an operator changed it since we looked: decide on the next tick.
            if (r is null || r.Status != RolloutStatus.Active || r.Stage != seen.Stage || r.StageStarted != seen.StageStarted) return false;
            var subject = Subject(r.Id, r.Model, r.Channel);
            var bp = schedule.Stages[r.Stage].BasisPoints;
            bool changed = false;

            // 1. Halt every device class with a failed guard (once).
            var halted = (await tx.RolloutClassesAsync(r.Id)).Where(c => c.State != ClassState.Active).Select(c => c.DeviceClass).ToHashSet(StringComparer.Ordinal);
            foreach (var failed in outcomes.Where(o => o.Verdict == GuardVerdict.Fail && !halted.Contains(o.DeviceClass)).GroupBy(o => o.DeviceClass))
            {
                var state = r.OnFailure == "rollback" ? ClassState.RolledBack : ClassState.Paused;
                var reason = string.Join("; ", failed.Select(o => o.Reason));
                await tx.UpsertRolloutClassAsync(new RolloutClassRow(r.Id, failed.Key, state, reason, now, "engine"));
                var details = Json(new { deviceClass = failed.Key, state, percent = bp / 100.0, outcomes = failed.ToList() });
                await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, r.Id, now, "engine", state == ClassState.Paused ? "halt-pause" : "halt-rollback", failed.Key, r.Stage, bp, "halt:" + failed.Key, details));
                await tx.AuditAsync("engine", state == ClassState.Paused ? "rollout.halt.pause" : "rollout.halt.rollback", $"{subject} class {failed.Key}", details);
                halted.Add(failed.Key);
                changed = true;
            }

            // 2. Every class that reported is halted: the whole rollout pauses or rolls back.
            var reported = outcomes.Select(o => o.DeviceClass).ToHashSet(StringComparer.Ordinal);
            if (changed && reported.Count > 0 && reported.All(halted.Contains))
            {
                var status = r.OnFailure == "rollback" && r.Baseline is not null ? RolloutStatus.RolledBack : RolloutStatus.Paused;
                var reason = $"every reporting device class failed a guard ({string.Join(", ", reported.Order(StringComparer.Ordinal))})";
                await tx.UpdateRolloutAsync(r.Id, status, r.Stage, r.StageStarted, now, reason);
                var details = Json(new { status, reason, percent = bp / 100.0 });
                await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, r.Id, now, "engine", status == RolloutStatus.Paused ? "pause" : "rollback", null, r.Stage, bp, "all-halted", details));
                await tx.AuditAsync("engine", "rollout." + (status == RolloutStatus.Paused ? "pause" : "rollback"), subject, details);
                return true;
            }

            // 3. Advance when the stage's time is up and every guard of the classes still rolling passes.
            if (r.Stage + 1 >= schedule.Stages.Count) return changed;
            var due = r.StageStarted + (schedule.Stages[r.Stage + 1].After - schedule.Stages[r.Stage].After);
            if (now < due) return changed;
            var relevant = outcomes.Where(o => !halted.Contains(o.DeviceClass)).ToList();
            if (r.Guards.Count > 0 && (relevant.Count == 0 || relevant.Any(o => o.Verdict != GuardVerdict.Pass)))
            {
                var waiting = relevant.Where(o => o.Verdict != GuardVerdict.Pass).ToList();
                var key = relevant.Count == 0 ? "wait:no-data" : "wait:" + string.Join(",", waiting.Select(o => $"{o.DeviceClass}|{o.Rule}|{o.Verdict}").Order(StringComparer.Ordinal));
                var last = await tx.LastRolloutDecisionAsync(r.Id);
                if (last?.Key != key)
                {
                    var why = relevant.Count == 0 ? "no guard outcomes yet (no data): waiting" : $"waiting: {string.Join("; ", waiting.Select(o => $"{o.DeviceClass} {o.Rule}: {o.Verdict} ({o.Reason})"))}";
                    var details = Json(new { reason = why, percent = bp / 100.0, due, outcomes = relevant });
                    await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, r.Id, now, "engine", "wait", null, r.Stage, bp, key, details));
                    await tx.AuditAsync("engine", "rollout.wait", subject, details);
                }
                return changed;
            }
            int next = r.Stage + 1;
            var nextStatus = IsFinalFullStage(schedule, next) ? RolloutStatus.Completed : RolloutStatus.Active;
            var text = $"stage {next + 1}/{schedule.Stages.Count}: {Percent(schedule, r.Stage)}% -> {Percent(schedule, next)}%" + (nextStatus == RolloutStatus.Completed ? " (completed)" : "");
            await tx.UpdateRolloutAsync(r.Id, nextStatus, next, now, now, text);
            var d = Json(new { fromPercent = Percent(schedule, r.Stage), toPercent = Percent(schedule, next), due, status = nextStatus, outcomes = relevant });
            await tx.InsertRolloutDecisionAsync(new RolloutDecisionRow(0, r.Id, now, "engine", nextStatus == RolloutStatus.Completed ? "complete" : "advance", null, next, schedule.Stages[next].BasisPoints, "advance:" + next, d));
            await tx.AuditAsync("engine", nextStatus == RolloutStatus.Completed ? "rollout.complete" : "rollout.advance", subject, d);
            return true;
        }, ct);
    }

    /// <summary>Which version a device should run (see <see cref="AssignmentAction"/>); 404 when the model has no releases.</summary>
    public async Task<Assignment> AssignAsync(string model, string? channelName, string installId, DeviceDescription device, string? installed, CancellationToken cancellationToken = default)
    {
        Segment("model name", model);
        var channel = CheckChannel(channelName);
        if (installId.Length is < 8 or > 128 || installId.Any(c => c <= ' ' || c > '~'))
            throw new RepositoryException(400, "install_id must be 8-128 printable ASCII characters");
        var releases = await repo.ReleasesOfAsync(model, cancellationToken);
        if (releases.Count == 0) throw new RepositoryException(404, $"no releases of {model}");
        var cls = DeviceClasses.Of(device);
        var bucket = Cohort.Bucket(installId, model);
        var now = time.GetUtcNow();
        if (!_cache.TryGetValue((model, channel), out var cached) || now - cached.FetchedAt >= options.TimestampCache || now < cached.FetchedAt)
        {
            var latest = (await store.ListRolloutsAsync(model, channel, 1, cancellationToken)).FirstOrDefault();
            cached = new CachedRollout(now, latest, latest is null ? [] : await store.ListRolloutClassesAsync(latest.Id, cancellationToken));
            _cache[(model, channel)] = cached;
        }
        var r = cached.Rollout;
        if (r is null)
            return new Assignment(model, channel, null, null, AssignmentAction.Latest, cls, bucket, 0, null, null, $"no rollout of {model} on channel {channel}: the newest signed version", null);

        var schedule = RolloutSchedule.Parse(r.Schedule);
        var bp = schedule.Stages[r.Stage].BasisPoints;
        var classState = cached.Classes.FirstOrDefault(c => c.DeviceClass == cls)?.State ?? ClassState.Active;
        bool inCohort = bucket < bp;
        bool hasCandidate = installed == r.Candidate;
        string? version;
        string action, reason;
        if (r.Status == RolloutStatus.RolledBack || classState == ClassState.RolledBack)
        {
            (version, action) = (r.Baseline, r.Baseline is null ? AssignmentAction.None : hasCandidate ? AssignmentAction.Return : AssignmentAction.Baseline);
            reason = r.Status == RolloutStatus.RolledBack ? $"rollout {r.Id} was rolled back: {r.Reason}" : $"device class {cls} was rolled back";
        }
        else if (r.Status == RolloutStatus.Aborted || classState == ClassState.Paused)
        {
            (version, action) = hasCandidate ? (r.Candidate, AssignmentAction.Keep) : (r.Baseline, r.Baseline is null ? AssignmentAction.None : AssignmentAction.Baseline);
            reason = r.Status == RolloutStatus.Aborted ? $"rollout {r.Id} was aborted" : $"device class {cls} is halted";
        }
        else if (r.Status == RolloutStatus.Completed || inCohort)
        {
            (version, action) = (r.Candidate, AssignmentAction.Candidate);
            reason = r.Status == RolloutStatus.Completed ? $"rollout {r.Id} completed" : $"bucket {bucket} < {bp} at stage {r.Stage + 1}/{schedule.Stages.Count}";
        }
        else
        {
            (version, action) = (r.Baseline, r.Baseline is null ? AssignmentAction.None : AssignmentAction.Baseline);
            reason = $"bucket {bucket} >= {bp} at stage {r.Stage + 1}/{schedule.Stages.Count}";
        }
        Api.ResolveApi.Chosen? chosen = null;
        if (version is not null && VariantSelector.Select(releases.Where(t => t.Targets.Values.Any(f => f.Model?.Version == version)), model, device) is { } c
            && c.Target.Version == version)
            chosen = new Api.ResolveApi.Chosen(model, version, c.Target.Variant, c.Target.Precision, c.Path, c.File.Length, c.File.Sha256, $"/v1/blobs/{c.File.Sha256}");
        var record = (cls, version, inCohort);
        if (!_recorded.TryGetValue((r.Id, installId), out var last) || last != record)
        {
            await store.RecordAssignmentAsync(r.Id, installId, cls, version, inCohort, now, cancellationToken);
            if (_recorded.Count >= MaxRemembered) _recorded.Clear();
            _recorded[(r.Id, installId)] = record;
        }
        return new Assignment(model, channel, r.Id, version, action, cls, bucket, bp, r.Candidate, r.Baseline, reason, chosen);
    }

    /// <summary>A rollout with its classes, recent decisions and cohort sizes, or null.</summary>
    public async Task<RolloutView?> GetAsync(long id, CancellationToken cancellationToken = default, int decisions = 50)
    {
        var r = await store.GetRolloutAsync(id, cancellationToken);
        if (r is null) return null;
        var ds = await store.ListRolloutDecisionsAsync(id, decisions, cancellationToken);
        var counts = await store.CountAssignmentsAsync(id, cancellationToken);
        return await ViewAsync(r, ds, counts, cancellationToken);
    }

    /// <summary>Rollouts (newest first) without decisions.</summary>
    public async Task<IReadOnlyList<RolloutView>> ListAsync(string? model, string? channel, int limit, CancellationToken cancellationToken = default)
    {
        var rows = await store.ListRolloutsAsync(model, channel, limit, cancellationToken);
        var views = new List<RolloutView>();
        foreach (var r in rows) views.Add(await ViewAsync(r, null, null, cancellationToken));
        return views;
    }

    private async Task<RolloutView> ViewAsync(RolloutRow r, IReadOnlyList<RolloutDecisionRow>? ds, IReadOnlyList<RolloutAssignmentCount>? counts, CancellationToken ct)
    {
        var schedule = RolloutSchedule.Parse(r.Schedule);
        var classes = (await store.ListRolloutClassesAsync(r.Id, ct)).Select(c => new ClassView(c.DeviceClass, c.State, c.Reason, c.At, c.Actor)).ToList();
        DateTimeOffset? due = r.Status == RolloutStatus.Active && r.Stage + 1 < schedule.Stages.Count
            ? r.StageStarted + (schedule.Stages[r.Stage + 1].After - schedule.Stages[r.Stage].After) : null;
        return new RolloutView(r.Id, r.Model, r.Channel, r.Candidate, r.Baseline, r.Schedule, r.Guards, r.OnFailure, r.Status, r.Stage, schedule.Stages.Count,
            Percent(schedule, r.Stage), r.StageStarted, due, r.Started, r.Updated, r.StartedBy, r.Reason, classes,
            ds?.Select(d => new DecisionView(d.Id, d.At, d.Actor, d.Kind, d.DeviceClass, d.Stage, d.BasisPoints / 100.0, Parse(d.Details))).ToList(),
            counts);
    }

    private async Task<IReadOnlyList<string>> PublishedVersionsAsync(string model, CancellationToken ct) =>
        (await repo.ReleasesOfAsync(model, ct)).SelectMany(t => t.Targets.Values).Select(f => f.Model?.Version).OfType<string>()
            .Distinct(StringComparer.Ordinal).OrderBy(v => v, ModelVersion.Comparer).ToList();

    private static bool IsFinalFullStage(RolloutSchedule s, int stage) => stage == s.Stages.Count - 1 && s.Stages[stage].BasisPoints == Cohort.Buckets;

    private static double Percent(RolloutSchedule s, int stage) => s.Stages[stage].BasisPoints / 100.0;

    private static string Subject(long id, string model, string channel) => $"rollout {id} {model}@{channel}";

    private static string Json(object o) => JsonSerializer.Serialize(o, Web);

    private static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    /// <summary>The channel name, defaulting to <see cref="DefaultChannel"/> (400 when malformed).</summary>
    public static string CheckChannel(string? channel)
    {
        if (string.IsNullOrEmpty(channel)) return DefaultChannel;
        Segment("channel", channel);
        return channel;
    }

    private static void Segment(string what, string value)
    {
        try { TargetsNames.ValidateSegment(what, value); }
        catch (MalformedMetadataException e) { throw new RepositoryException(400, e.Message); }
    }
}

/// <summary>Runs <see cref="RolloutService.TickAsync"/> every <see cref="ServerOptions.RolloutTick"/> on the injected clock.</summary>
public sealed class RolloutEngine(RolloutService rollouts, ServerOptions options, TimeProvider time, ILogger<RolloutEngine> log) : BackgroundService
{
    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.RolloutTick, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await rollouts.TickAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { log.LogWarning(e, "rollout tick failed"); }
        }
    }
}
