// The pipeline: plans stages (plugins resolved, configs validated, inputs wired
// to upstream producers) before anything runs, then runs them in order,
// skipping unchanged finished stages, resuming interrupted ones, fanning out
// shards and stopping at a failed gate.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ArtifactReader, ArtifactWriter, FileArtifact, artifactFileName, atomicWriteFile, sha256File, type ArtifactInfo } from "./artifacts.ts";
import { ConfigError, zodIssues, type LoadedConfig, type StageSpec } from "./config.ts";
import { inputSlot, type AnyPlugin, type ArtifactKind, type GateResult, type Logger, type RunManifestLike, type Services, type StageContext } from "./plugin.ts";
import { ChangedFileError, checkFile, type OnChanged, type RecordedFile } from "./integrity.ts";
import { createProgress, humanLine, progressMode } from "./progress.ts";
import { environment, gitInfo, hashConfig, manifestPath, readJsonIfExists, sha256, type ProvenanceStamp, type RunManifest, type StageRecord } from "./provenance.ts";
import { loadPlugin } from "./registry.ts";
import { acquireLock, lockLive, LockedError, readLock, type Lock } from "./run-lock.ts";

export interface InputWiring {
  slot: string;
  kind: ArtifactKind<unknown>;
  fromStage: string;
  fromSlot: string;
  /** An optional slot (optional() in the plugin's consumes) that this config wires. */
  optional: boolean;
}

export interface PlannedStage {
  index: number;
  id: string;
  spec: StageSpec;
  plugin: AnyPlugin;
  source: string;
  config: unknown;
  configHash: string;
  inputs: InputWiring[];
  /** The slots this stage's config writes (the plugin's `producesFor`, default all of `produces`). */
  produces: Record<string, ArtifactKind<unknown>>;
}

/** Resolve plugins, validate every stage's config and wire inputs. Throws ConfigError. */
export async function planRun(loaded: LoadedConfig): Promise<PlannedStage[]> {
  const issues: ConfigError["issues"] = [];
  const at = (path: (string | number)[], message: string) => issues.push({ ...loaded.locate(path), path, message });
  const planned: PlannedStage[] = [];
  for (const [index, spec] of loaded.config.stages.entries()) {
    let resolved;
    try {
      resolved = await loadPlugin(spec.plugin, loaded.stageDirs[index]!);
    } catch (e) {
      at(["stages", index, "plugin"], (e as Error).message);
      continue;
    }
    const { plugin, source } = resolved;
    const id = spec.id ?? plugin.name;
    if (planned.some((p) => p.id === id)) at(["stages", index], `duplicate stage id '${id}' (give one of them an id:)`);
    const parsed = plugin.config.safeParse(spec.config);
    if (!parsed.success) issues.push(...zodIssues(parsed.error, plugin.config, ["stages", index, "config"], loaded.locate));
    if (spec.shards > 1 && !plugin.shardable) at(["stages", index, "shards"], `plugin '${plugin.name}' is not shardable`);
    if (spec.shards > 1 && Object.values(plugin.produces).some((k) => k.format === "file")) at(["stages", index, "shards"], `plugin '${plugin.name}' produces a file artifact, which cannot be merged from shards`);

    const config = parsed.success ? parsed.data : spec.config;
    const writes = parsed.success && plugin.producesFor ? plugin.producesFor(config) : Object.keys(plugin.produces);
    const produces = Object.fromEntries(Object.entries(plugin.produces).filter(([slot]) => writes.includes(slot)));
    let fingerprint: unknown;
    if (parsed.success && plugin.fingerprint) {
      try {
        fingerprint = await plugin.fingerprint(config, { configDir: dirname(loaded.path) });
      } catch (e) {
        at(["stages", index, "config"], (e as Error).message);
      }
    }
    const inputs: InputWiring[] = [];
    const slots = Object.entries(plugin.consumes).map(([slot, decl]) => ({ slot, ...inputSlot(decl) }));
    for (const slot of Object.keys(spec.inputs)) {
      if (!(slot in plugin.consumes)) at(["stages", index, "inputs", slot], `plugin '${plugin.name}' has no input slot '${slot}' (slots: ${slots.map((s) => `${s.slot}${s.optional ? " (optional)" : ""}`).join(", ") || "none"})`);
    }
    for (const { slot, kind, optional, wantedBy } of slots) {
      const wanted = spec.inputs[slot];
      // An optional slot the config does not name is wired only where the plugin says this
      // config uses it (and then like a required one); otherwise the stage runs without it.
      const used = !optional || wanted !== undefined || (parsed.success && wantedBy?.(config) === true);
      if (!used) continue;
      const candidates = planned.filter((p) => !wanted || p.id === wanted).reverse();
      const producer = candidates.find((p) => Object.values(p.produces).some((k) => k.name === kind.name));
      if (!producer) {
        const upstream = [...new Set(planned.flatMap((p) => Object.values(p.produces).map((k) => k.name)))];
        const why = optional && !wanted ? ` (the slot is optional; this stage's config uses it: see plugin '${plugin.name}')` : "";
        at(["stages", index, wanted ? "inputs" : "plugin"], `stage '${id}' consumes kind '${kind.name}' (slot '${slot}') but ${wanted ? `no stage '${wanted}' before it produces it` : "no stage before it produces it"} (produced upstream: ${upstream.join(", ") || "nothing"})${why}`);
        continue;
      }
      const fromSlot = Object.entries(producer.produces).find(([, k]) => k.name === kind.name)![0];
      inputs.push({ slot, kind, fromStage: producer.id, fromSlot, optional });
    }
    // A fingerprint joins the hash only where a plugin has one, so every other stage's hash stays as it was.
    const hashed = { plugin: plugin.name, version: plugin.version, config, shards: spec.shards, ...(fingerprint === undefined ? {} : { fingerprint }) };
    planned.push({ index, id, spec, plugin, source, config, inputs, produces, configHash: hashConfig(hashed) });
  }
  if (issues.length) throw new ConfigError(issues);
  return planned;
}

export interface RunOptions {
  runDir?: string;
  /** Re-run this stage and everything after it. */
  from?: string;
  /** Run only this stage (its inputs must already exist). */
  only?: string;
  /** Run one shard of the `only` stage, for sharding across processes. */
  shard?: { index: number; count: number };
  /** Overrides the config's `onChanged`. */
  onChanged?: OnChanged;
  signal?: AbortSignal;
  log?: Logger;
}

export interface RunOutcome {
  status: "ok" | "gate-failed" | "interrupted";
  runDir: string;
  failedGates: { stage: string; gate: GateResult }[];
  exitCode: number;
}

export const EXIT = { ok: 0, error: 1, config: 2, gate: 3, interrupted: 130 } as const;

class ServiceRegistry implements Services {
  private items = new Map<string, { value: unknown; dispose?: (v: never) => Promise<void> | void }>();
  get<T>(key: string) {
    return this.items.get(key)?.value as T | undefined;
  }
  async getOrCreate<T>(key: string, create: () => Promise<T> | T, dispose?: (v: T) => Promise<void> | void) {
    if (!this.items.has(key)) this.items.set(key, { value: await create(), dispose: dispose as (v: never) => void });
    return this.items.get(key)!.value as T;
  }
  async release(key: string) {
    const item = this.items.get(key);
    this.items.delete(key);
    if (item?.dispose) await item.dispose(item.value as never);
  }
  async disposeAll() {
    for (const key of [...this.items.keys()].reverse()) await this.release(key);
  }
}

// Through the progress display: above the bars on a terminal, never through them (core/progress.ts).
const consoleLog: Logger = {
  info: (msg, data) => humanLine(data ? `${msg} ${JSON.stringify(data)}` : msg, "info"),
  warn: (msg, data) => humanLine(`warning: ${msg}${data ? ` ${JSON.stringify(data)}` : ""}`, "warn"),
};

/** Env a process-mode shard child gets: the parent's run-lock token and pid. */
export const SHARD_PARENT_ENV = { lock: "SELFTUNE_RUN_LOCK", pid: "SELFTUNE_PARENT_PID" } as const;

const MERGE_COMMIT_EVERY = 1000;

/** Shard processes share the terminal: bars from several would overwrite each other, so they print plain lines. */
function shardProgressEnv(): Record<string, string> {
  return progressMode() === "bar" ? { SELFTUNE_PROGRESS: "off" } : {};
}

function deriveSeed(runSeed: number, stage: string, shard: number | null): number {
  return parseInt(sha256(`${runSeed}:${stage}:${shard ?? ""}`).slice(0, 8), 16);
}

interface MergeCursor {
  /** Shards before this one are merged completely. */
  shard: number;
  /** Records of `shard` merged so far. */
  records: number;
}

/** ctx.writeFile: an extra file written atomically into `dir` and recorded in `files`. */
function extraFileWriter(dir: string, files: StageRecord["files"]) {
  return async (name: string, data: string | Uint8Array): Promise<string> => {
    const p = join(dir, name);
    atomicWriteFile(p, data);
    const st = statSync(p);
    const entry = { file: name, sha256: await sha256File(p), bytes: st.size, mtimeMs: st.mtimeMs };
    const i = files.findIndex((f) => f.file === name);
    if (i >= 0) files[i] = entry;
    else files.push(entry);
    return p;
  };
}

async function countRecords(path: string, kind: ArtifactKind<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of new ArtifactReader(path, kind)) n++;
  return n;
}

export class Pipeline {
  readonly runDir: string;
  private manifest!: RunManifest;
  private readonly services = new ServiceRegistry();
  private readonly log: Logger;
  private readonly signal: AbortSignal;
  /** Finished stages whose files were checked against the manifest in this run. */
  private readonly verified = new Set<string>();
  private runLock: Lock | null = null;

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly stages: PlannedStage[],
    private readonly opts: RunOptions = {},
  ) {
    this.runDir = resolve(opts.runDir ?? join(loaded.config.runsDir, loaded.config.name));
    this.log = opts.log ?? consoleLog;
    this.signal = opts.signal ?? new AbortController().signal;
  }

  private saveManifest() {
    this.manifest.updatedAt = new Date().toISOString();
    atomicWriteFile(manifestPath(this.runDir), JSON.stringify(this.manifest, null, 2));
  }

  private openManifest() {
    mkdirSync(this.runDir, { recursive: true });
    const existing = readJsonIfExists<RunManifest>(manifestPath(this.runDir));
    const now = new Date().toISOString();
    this.manifest = {
      runId: existing?.runId ?? `${this.loaded.config.name}-${now.replace(/[-:T]/g, "").slice(0, 14)}-${Math.random().toString(36).slice(2, 6)}`,
      name: this.loaded.config.name,
      configPath: this.loaded.path,
      configHash: hashConfig(this.loaded.config),
      overrides: this.loaded.overrides,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      git: gitInfo(),
      environment: environment(),
      stages: existing?.stages ?? {},
    };
  }

  private inputsHash(stage: PlannedStage): string {
    // An optional input is hashed with its slot name (wiring it, or another one, changes the
    // hash); required ones by sha256 alone, as they always were, so existing runs stay valid.
    return hashConfig(stage.inputs.map((w) => (w.optional ? `${w.slot}=${this.producedArtifact(stage, w).sha256}` : this.producedArtifact(stage, w).sha256)));
  }

  private producedArtifact(stage: PlannedStage, w: InputWiring): ArtifactInfo {
    const rec = this.manifest.stages[w.fromStage];
    if (rec?.status !== "done") throw new Error(`stage '${stage.id}' needs '${w.kind.name}' from stage '${w.fromStage}', which has not finished in ${this.runDir} (run it first)`);
    const art = rec.artifacts.find((a) => a.slot === w.fromSlot);
    if (!art) throw new Error(`stage '${w.fromStage}' recorded no artifact '${w.fromSlot}'`);
    return art;
  }

  private get onChanged(): OnChanged {
    return this.opts.onChanged ?? this.loaded.config.onChanged;
  }

  private lockPath(shard?: { stage: string; index: number; count: number }): string {
    return join(this.runDir, shard ? `.lock-${shard.stage}-${shard.index}-of-${shard.count}` : ".lock");
  }

  /** A shard lock; waits for a killed run's orphaned shard process to notice and stop. */
  private shardLock(stage: string, index: number, count: number): Promise<Lock> {
    const parent = Number(process.env[SHARD_PARENT_ENV.pid]) || null;
    return acquireLock(this.lockPath({ stage, index, count }), { parentPid: this.opts.shard ? parent : null, waitForOrphansMs: 30_000, onTakeover: (h) => this.log.warn(`taking over the stale lock of shard ${index}/${count} of '${stage}' (pid ${h.pid} is gone)`) });
  }

  /** The run lock; a shard child started by a run shares its parent's instead of taking it. */
  private async lockRun(): Promise<Lock | null> {
    mkdirSync(this.runDir, { recursive: true });
    if (this.opts.shard) {
      const holder = readLock(this.lockPath());
      if (holder && lockLive(holder) && holder.token !== process.env[SHARD_PARENT_ENV.lock]) throw new LockedError(this.lockPath(), holder);
      return null;
    }
    return acquireLock(this.lockPath(), { onTakeover: (h) => this.log.warn(`taking over the stale lock of ${this.runDir} (pid ${h.pid} on ${h.host} is gone)`) });
  }

  async run(): Promise<RunOutcome> {
    this.runLock = await this.lockRun();
    try {
      return await this.runLocked();
    } finally {
      this.runLock?.release();
    }
  }

  private async runLocked(): Promise<RunOutcome> {
    this.openManifest();
    const fromIdx = this.opts.from ? this.indexOf(this.opts.from) : 0;
    const selected = this.opts.only ? [this.stages[this.indexOf(this.opts.only)]!] : this.stages.slice(fromIdx);
    const forced = new Set(this.opts.shard ? [] : this.opts.from || this.opts.only ? selected.map((s) => s.id) : []);
    const failedGates: RunOutcome["failedGates"] = [];
    try {
      for (const stage of selected) {
        if (this.signal.aborted) return this.outcome("interrupted", failedGates);
        const done = this.opts.shard ? await this.runShardChild(stage, this.opts.shard) : await this.runStage(stage, forced.has(stage.id));
        if (!done) return this.outcome("interrupted", failedGates);
        if (this.opts.shard) continue;
        const rec = this.manifest.stages[stage.id]!;
        const failed = rec.gates.filter((g) => !g.passed);
        for (const gate of failed) {
          failedGates.push({ stage: stage.id, gate });
          this.log.warn(`gate '${gate.name}' of stage '${stage.id}' failed: ${gate.summary}${rec.gateMode === "report" ? " (gate: report, continuing)" : ""}`);
        }
        if (failed.length && rec.gateMode === "stop") return this.outcome("gate-failed", failedGates);
      }
      return this.outcome("ok", failedGates);
    } finally {
      await this.services.disposeAll();
    }
  }

  private outcome(status: RunOutcome["status"], failedGates: RunOutcome["failedGates"]): RunOutcome {
    const exitCode = status === "ok" ? EXIT.ok : status === "gate-failed" ? EXIT.gate : EXIT.interrupted;
    return { status, runDir: this.runDir, failedGates, exitCode };
  }

  private indexOf(id: string): number {
    const i = this.stages.findIndex((s) => s.id === id);
    if (i < 0) throw new ConfigError([{ file: this.loaded.path, line: null, path: [], message: `no stage '${id}' (stages: ${this.stages.map((s) => s.id).join(", ")})` }]);
    return i;
  }

  /**
   * Check a finished stage's recorded files against the manifest (once per run).
   * Returns false when one is missing (the stage must run again). A changed file
   * stops the run (onChanged: stop) or is taken as it is now (rerun): its new
   * sha256 is recorded, so every stage that reads it sees new inputs and re-runs.
   */
  private async verifyStage(id: string): Promise<boolean> {
    if (this.verified.has(id)) return true;
    const rec = this.manifest.stages[id];
    if (rec?.status !== "done") return false;
    const dir = join(this.runDir, id);
    const planned = this.stages.find((s) => s.id === id);
    const entries: { rec: RecordedFile; count?: () => Promise<number> }[] = [
      ...rec.artifacts.map((a) => {
        const kind = planned?.plugin.produces[a.slot];
        return { rec: a, count: kind && kind.format !== "file" ? () => countRecords(join(dir, a.file), kind) : undefined };
      }),
      ...rec.files.map((f) => ({ rec: f })),
    ];
    let dirty = false;
    for (const { rec: f, count } of entries) {
      const path = join(dir, f.file);
      const check = await checkFile(path, f);
      if (check.status === "missing") return false;
      if (check.status === "touched") f.mtimeMs = check.mtimeMs;
      if (check.status === "changed") {
        if (this.onChanged === "stop") throw new ChangedFileError(path, f.sha256, check.sha256, id);
        this.log.warn(`${path} changed since stage '${id}' wrote it; using it as it is now (onChanged: rerun)`);
        Object.assign(f, { sha256: check.sha256, bytes: check.bytes, mtimeMs: check.mtimeMs });
        if (count) (f as ArtifactInfo).records = await count();
        rec.changedOnDisk = [...new Set([...(rec.changedOnDisk ?? []), f.file])];
      }
      dirty ||= check.status !== "ok";
    }
    if (dirty) this.saveManifest();
    this.verified.add(id);
    return true;
  }

  /** The files this stage reads must still be what their producers recorded. */
  private async verifyInputs(stage: PlannedStage): Promise<void> {
    for (const w of stage.inputs) {
      if (this.manifest.stages[w.fromStage]?.status !== "done") continue; // producedArtifact says so
      if (!(await this.verifyStage(w.fromStage))) {
        throw new Error(`stage '${stage.id}' reads '${w.fromSlot}' of stage '${w.fromStage}', whose files are missing from ${join(this.runDir, w.fromStage)} (run --from ${w.fromStage})`);
      }
    }
  }

  private async isUpToDate(stage: PlannedStage, rec: StageRecord | undefined, inputsHash: string): Promise<boolean> {
    return rec?.status === "done" && rec.configHash === stage.configHash && rec.inputsHash === inputsHash && (await this.verifyStage(stage.id));
  }

  /** Empty a stage folder for a fresh attempt; `keepShards`: finished shards check their own hashes. */
  private clearStageDir(dir: string, keepShards: boolean) {
    if (!keepShards || !existsSync(dir)) return rmSync(dir, { recursive: true, force: true });
    for (const name of readdirSync(dir)) if (name !== "shards") rmSync(join(dir, name), { recursive: true, force: true });
  }

  /** Returns false when interrupted. */
  private async runStage(stage: PlannedStage, forced: boolean): Promise<boolean> {
    await this.verifyInputs(stage);
    const inputsHash = this.inputsHash(stage);
    const prev = this.manifest.stages[stage.id];
    if (!forced && (await this.isUpToDate(stage, prev, inputsHash))) {
      // The gate mode is not part of the stage's identity: a changed one applies to the recorded gates.
      if (prev!.gateMode !== stage.spec.gate) {
        this.log.info(`stage '${stage.id}': gate mode now '${stage.spec.gate}' (was '${prev!.gateMode}'); its recorded gates are re-evaluated`);
        prev!.gateMode = stage.spec.gate;
        this.saveManifest();
      }
      this.log.info(`stage '${stage.id}': unchanged, skipped`);
      return true;
    }
    const dir = join(this.runDir, stage.id);
    // Partial output is only resumable under the same config and inputs; --from and
    // --only resume an interrupted attempt too, and redo only a finished one.
    const resumable = prev && prev.status !== "done" && prev.configHash === stage.configHash && prev.inputsHash === inputsHash;
    if (resumable) this.log.info(`stage '${stage.id}': resuming an interrupted attempt`);
    else this.clearStageDir(dir, stage.spec.shards > 1 && !(forced && prev?.status === "done"));
    this.verified.delete(stage.id);

    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const record: StageRecord = {
      plugin: stage.plugin.name,
      pluginVersion: stage.plugin.version,
      status: "running",
      configHash: stage.configHash,
      inputsHash,
      config: stage.config,
      inputs: Object.fromEntries(stage.inputs.map((w) => {
        const a = this.producedArtifact(stage, w);
        return [w.slot, { stage: w.fromStage, file: a.file, sha256: a.sha256 }];
      })),
      artifacts: [],
      files: [],
      gates: [],
      gateMode: stage.spec.gate,
      provenance: this.stamp(stage, null),
      startedAt,
      finishedAt: null,
      durationMs: null,
      shards: stage.spec.shards > 1 ? stage.spec.shards : null,
    };
    this.manifest.stages[stage.id] = record;
    this.saveManifest();
    this.log.info(`stage '${stage.id}' (${stage.plugin.name} ${stage.plugin.version}) started`);

    try {
      let result: { artifacts: ArtifactInfo[]; gates: GateResult[]; files: StageRecord["files"]; interrupted: boolean };
      if (stage.spec.shards > 1) result = await this.runShardsAndMerge(stage, dir, inputsHash, record.provenance);
      else result = await this.execute(stage, dir, null, record.provenance);
      if (result.interrupted) {
        record.status = "interrupted";
        this.saveManifest();
        this.log.warn(`stage '${stage.id}' interrupted; committed records are kept and the next run resumes`);
        return false;
      }
      Object.assign(record, { ...result, status: "done", finishedAt: new Date().toISOString(), durationMs: Math.round(performance.now() - t0) });
      this.saveManifest();
      this.verified.add(stage.id);
      this.log.info(`stage '${stage.id}' done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return true;
    } catch (e) {
      record.status = this.signal.aborted ? "interrupted" : "failed";
      record.error = (e as Error).message;
      this.saveManifest();
      if (this.signal.aborted) return false;
      throw e;
    }
  }

  private stamp(stage: PlannedStage, shard: { index: number; count: number } | null): ProvenanceStamp {
    return {
      runId: this.manifest.runId,
      stage: stage.id,
      plugin: stage.plugin.name,
      pluginVersion: stage.plugin.version,
      configHash: stage.configHash,
      git: this.manifest.git,
      seed: deriveSeed(this.loaded.config.seed, stage.id, shard?.index ?? null),
      shard: shard ? `${shard.index}/${shard.count}` : null,
      createdAt: new Date().toISOString(),
      extra: {},
    };
  }

  /** Run the plugin once in `dir`; finalize its outputs unless interrupted. */
  private async execute(stage: PlannedStage, dir: string, shard: { index: number; count: number } | null, provenance: ProvenanceStamp) {
    mkdirSync(dir, { recursive: true });
    // Deterministic (run name, not the timestamped id), so the same seed gives byte-identical files.
    const stampId = `${this.manifest.name}/${stage.id}${shard ? `#${shard.index}` : ""}`;
    const writers: ArtifactWriter<unknown>[] = [];
    const fileOutputs: FileArtifact<unknown>[] = [];
    const outputs: Record<string, unknown> = {};
    for (const [slot, kind] of Object.entries(stage.produces)) {
      if (kind.format === "file") {
        const fa = new FileArtifact(dir, slot, kind, null);
        fileOutputs.push(fa);
        outputs[slot] = fa;
      } else {
        const w = new ArtifactWriter(join(dir, artifactFileName(slot, kind)), slot, kind, stampId);
        writers.push(w);
        outputs[slot] = w;
      }
    }
    const inputs: Record<string, unknown> = {};
    for (const w of stage.inputs) {
      const art = this.producedArtifact(stage, w);
      const srcDir = join(this.runDir, w.fromStage);
      inputs[w.slot] = w.kind.format === "file" ? new FileArtifact(srcDir, w.fromSlot, w.kind, art.file) : new ArtifactReader(join(srcDir, art.file), w.kind);
    }
    const gates: GateResult[] = [];
    const files: StageRecord["files"] = [];
    const progress = createProgress(shard ? `${stage.id}#${shard.index}` : stage.id);
    const ctx: StageContext<unknown, never, never> = {
      config: stage.config,
      stage: { id: stage.id, index: stage.index, dir },
      run: { id: this.manifest.runId, name: this.manifest.name, dir: this.runDir, configPath: this.loaded.path },
      seed: provenance.seed,
      shard,
      inputs: inputs as never,
      outputs: outputs as never,
      progress,
      log: this.log,
      signal: this.signal,
      services: this.services,
      provenance,
      gate: (g) => gates.push(g),
      writeFile: extraFileWriter(dir, files),
      readManifest: async (runDir) => readJsonIfExists<RunManifestLike>(manifestPath(runDir)),
    };
    try {
      await stage.plugin.run(ctx);
    } finally {
      progress.close();
    }
    // Records written after the plugin's last cursor are dropped, not committed:
    // the plugin resumes from that cursor and would write them again.
    if (this.signal.aborted) return { artifacts: [], gates, files, interrupted: true };
    const artifacts: ArtifactInfo[] = [];
    for (const w of writers) artifacts.push(await w.finalize());
    for (const f of fileOutputs) {
      if (!f.written) throw new Error(`stage '${stage.id}' finished without writing its output '${f.slot}'`);
      artifacts.push(await f.info());
    }
    return { artifacts, gates, files, interrupted: false };
  }

  private shardDir(stageDir: string, i: number, n: number) {
    return join(stageDir, "shards", `${i}-of-${n}`);
  }

  /** A child process started with --shard i/N runs one shard and records it in shard.json. */
  private async runShardChild(stage: PlannedStage, shard: { index: number; count: number }): Promise<boolean> {
    if (shard.count !== stage.spec.shards) throw new Error(`--shard ${shard.index}/${shard.count} but stage '${stage.id}' is configured with ${stage.spec.shards} shards`);
    return this.runOneShard(stage, join(this.runDir, stage.id), this.inputsHash(stage), shard.index);
  }

  private async runOneShard(stage: PlannedStage, stageDir: string, inputsHash: string, index: number): Promise<boolean> {
    const lock = await this.shardLock(stage.id, index, stage.spec.shards);
    try {
      return await this.runOneShardLocked(stage, stageDir, inputsHash, index);
    } finally {
      lock.release();
    }
  }

  private async runOneShardLocked(stage: PlannedStage, stageDir: string, inputsHash: string, index: number): Promise<boolean> {
    const n = stage.spec.shards;
    const dir = this.shardDir(stageDir, index, n);
    const marker = join(dir, "shard.json");
    const prev = readJsonIfExists<{ status: string; configHash: string; inputsHash: string }>(marker);
    if (prev?.status === "done" && prev.configHash === stage.configHash && prev.inputsHash === inputsHash) return true;
    if (prev && (prev.configHash !== stage.configHash || prev.inputsHash !== inputsHash)) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    atomicWriteFile(marker, JSON.stringify({ status: "running", configHash: stage.configHash, inputsHash }));
    const shard = { index, count: n };
    const provenance = this.stamp(stage, shard);
    const res = await this.execute(stage, dir, shard, provenance);
    if (res.interrupted) return false;
    atomicWriteFile(marker, JSON.stringify({ status: "done", configHash: stage.configHash, inputsHash, ...res, provenance }, null, 2));
    return true;
  }

  private async runShardsAndMerge(stage: PlannedStage, dir: string, inputsHash: string, provenance: ProvenanceStamp) {
    const n = stage.spec.shards;
    if (stage.spec.shardMode === "process") {
      const children = Array.from({ length: n }, (_, i) =>
        Bun.spawn(["bun", join(import.meta.dir, "cli.ts"), "run", this.loaded.path, ...this.loaded.overrides.flatMap((o) => ["--set", o]), "--run-dir", this.runDir, "--only", stage.id, "--shard", `${i}/${n}`], { stdout: "inherit", stderr: "inherit", env: { ...process.env, ...shardProgressEnv(), [SHARD_PARENT_ENV.lock]: this.runLock?.token ?? "", [SHARD_PARENT_ENV.pid]: String(process.pid) } }),
      );
      const abort = () => children.forEach((c) => c.kill("SIGINT"));
      this.signal.addEventListener("abort", abort);
      const codes = await Promise.all(children.map((c) => c.exited));
      this.signal.removeEventListener("abort", abort);
      if (this.signal.aborted) return { artifacts: [], gates: [], files: [], interrupted: true };
      const bad = codes.map((c, i) => [i, c] as const).filter(([, c]) => c !== 0);
      if (bad.length) throw new Error(`stage '${stage.id}': shard process(es) failed: ${bad.map(([i, c]) => `${i}/${n} exit ${c}`).join(", ")}`);
    } else {
      for (let i = 0; i < n; i++) if (!(await this.runOneShard(stage, dir, inputsHash, i))) return { artifacts: [], gates: [], files: [], interrupted: true };
    }
    // Merge: concatenate each output in shard order, re-validating every record.
    // The cursor says how far the merge got, so an interrupted merge continues
    // there instead of appending the shards it had already merged again.
    const gates: GateResult[] = [];
    const artifacts: ArtifactInfo[] = [];
    const interrupted = { artifacts: [], gates: [], files: [], interrupted: true };
    for (const [slot, kind] of Object.entries(stage.produces)) {
      const out = new ArtifactWriter(join(dir, artifactFileName(slot, kind)), slot, kind, `${this.manifest.name}/${stage.id}`);
      const at = (out.cursor as MergeCursor | null) ?? { shard: 0, records: 0 };
      for (let i = at.shard; i < n; i++) {
        const skip = i === at.shard ? at.records : 0;
        let r = 0;
        for await (const rec of new ArtifactReader(join(this.shardDir(dir, i, n), artifactFileName(slot, kind)), kind)) {
          if (r++ < skip) continue;
          out.write(rec);
          if (r % MERGE_COMMIT_EVERY === 0) {
            out.commit({ shard: i, records: r } satisfies MergeCursor);
            if (this.signal.aborted) return interrupted;
          }
        }
        out.commit({ shard: i + 1, records: 0 } satisfies MergeCursor);
        if (this.signal.aborted) return interrupted;
      }
      artifacts.push(await out.finalize());
    }
    const shards = Array.from({ length: n }, (_, i) => {
      const shardDir = this.shardDir(dir, i, n);
      const marker = readJsonIfExists<{ gates: GateResult[] }>(join(shardDir, "shard.json"));
      return { index: i, count: n, dir: shardDir, gates: marker?.gates ?? [] };
    });
    for (const s of shards) for (const g of s.gates) gates.push({ ...g, name: `${g.name}#${s.index}` });
    // The plugin's view of the whole (a shard saw only its share): re-done from the merged
    // files whenever the merge is, so an interrupted merge leaves nothing half-summarised.
    const files: StageRecord["files"] = [];
    if (stage.plugin.merge) {
      const outputs = Object.fromEntries(Object.entries(stage.produces).map(([slot, kind]) => [slot, new ArtifactReader(join(dir, artifactFileName(slot, kind)), kind)]));
      await stage.plugin.merge({
        config: stage.config,
        stage: { id: stage.id, index: stage.index, dir },
        run: { id: this.manifest.runId, name: this.manifest.name, dir: this.runDir, configPath: this.loaded.path },
        outputs: outputs as never,
        shards,
        log: this.log,
        provenance,
        gate: (g) => gates.push(g),
        writeFile: extraFileWriter(dir, files),
      });
    }
    return { artifacts, gates, files, interrupted: false };
  }
}
