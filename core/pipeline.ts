// The pipeline: plans stages (plugins resolved, configs validated, inputs wired
// to upstream producers) before anything runs, then runs them in order,
// skipping unchanged finished stages, resuming interrupted ones, fanning out
// shards and stopping at a failed gate.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ArtifactReader, ArtifactWriter, FileArtifact, artifactFileName, atomicWriteFile, sha256File, type ArtifactInfo } from "./artifacts.ts";
import { ConfigError, zodIssues, type LoadedConfig, type StageSpec } from "./config.ts";
import type { AnyPlugin, ArtifactKind, GateResult, Logger, RunManifestLike, Services, StageContext } from "./plugin.ts";
import { createProgress } from "./progress.ts";
import { environment, gitInfo, hashConfig, manifestPath, readJsonIfExists, sha256, type ProvenanceStamp, type RunManifest, type StageRecord } from "./provenance.ts";
import { loadPlugin } from "./registry.ts";

export interface InputWiring {
  slot: string;
  kind: ArtifactKind<unknown>;
  fromStage: string;
  fromSlot: string;
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

    const inputs: InputWiring[] = [];
    for (const slot of Object.keys(spec.inputs)) {
      if (!(slot in plugin.consumes)) at(["stages", index, "inputs", slot], `plugin '${plugin.name}' has no input slot '${slot}' (slots: ${Object.keys(plugin.consumes).join(", ") || "none"})`);
    }
    for (const [slot, kind] of Object.entries(plugin.consumes)) {
      const wanted = spec.inputs[slot];
      const candidates = planned.filter((p) => !wanted || p.id === wanted).reverse();
      const producer = candidates.find((p) => Object.values(p.plugin.produces).some((k) => k.name === kind.name));
      if (!producer) {
        const upstream = [...new Set(planned.flatMap((p) => Object.values(p.plugin.produces).map((k) => k.name)))];
        at(["stages", index, wanted ? "inputs" : "plugin"], `stage '${id}' consumes kind '${kind.name}' (slot '${slot}') but ${wanted ? `stage '${wanted}'` : "no stage before it"} produces it (produced upstream: ${upstream.join(", ") || "nothing"})`);
        continue;
      }
      const fromSlot = Object.entries(producer.plugin.produces).find(([, k]) => k.name === kind.name)![0];
      inputs.push({ slot, kind, fromStage: producer.id, fromSlot });
    }
    const config = parsed.success ? parsed.data : spec.config;
    planned.push({ index, id, spec, plugin, source, config, inputs, configHash: hashConfig({ plugin: plugin.name, version: plugin.version, config, shards: spec.shards }) });
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

const consoleLog: Logger = {
  info: (msg, data) => console.error(data ? `${msg} ${JSON.stringify(data)}` : msg),
  warn: (msg, data) => console.error(`warning: ${msg}${data ? ` ${JSON.stringify(data)}` : ""}`),
};

function deriveSeed(runSeed: number, stage: string, shard: number | null): number {
  return parseInt(sha256(`${runSeed}:${stage}:${shard ?? ""}`).slice(0, 8), 16);
}

export class Pipeline {
  readonly runDir: string;
  private manifest!: RunManifest;
  private readonly services = new ServiceRegistry();
  private readonly log: Logger;
  private readonly signal: AbortSignal;

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
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      git: gitInfo(),
      environment: environment(),
      stages: existing?.stages ?? {},
    };
  }

  private inputsHash(stage: PlannedStage): string {
    return hashConfig(stage.inputs.map((w) => this.producedArtifact(stage, w).sha256));
  }

  private producedArtifact(stage: PlannedStage, w: InputWiring): ArtifactInfo {
    const rec = this.manifest.stages[w.fromStage];
    if (rec?.status !== "done") throw new Error(`stage '${stage.id}' needs '${w.kind.name}' from stage '${w.fromStage}', which has not finished in ${this.runDir} (run it first)`);
    const art = rec.artifacts.find((a) => a.slot === w.fromSlot);
    if (!art) throw new Error(`stage '${w.fromStage}' recorded no artifact '${w.fromSlot}'`);
    return art;
  }

  async run(): Promise<RunOutcome> {
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

  private isUpToDate(stage: PlannedStage, rec: StageRecord | undefined, inputsHash: string): boolean {
    return (
      rec?.status === "done" &&
      rec.configHash === stage.configHash &&
      rec.inputsHash === inputsHash &&
      rec.artifacts.every((a) => existsSync(join(this.runDir, stage.id, a.file)))
    );
  }

  /** Returns false when interrupted. */
  private async runStage(stage: PlannedStage, forced: boolean): Promise<boolean> {
    const inputsHash = this.inputsHash(stage);
    const prev = this.manifest.stages[stage.id];
    if (!forced && this.isUpToDate(stage, prev, inputsHash)) {
      this.log.info(`stage '${stage.id}': unchanged, skipped`);
      return true;
    }
    const dir = join(this.runDir, stage.id);
    // Partial output is only resumable under the same config and inputs.
    const resumable = prev && prev.status !== "done" && prev.configHash === stage.configHash && prev.inputsHash === inputsHash;
    if (!resumable || forced) rmSync(dir, { recursive: true, force: true });
    else this.log.info(`stage '${stage.id}': resuming an interrupted attempt`);

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
      if (stage.spec.shards > 1) result = await this.runShardsAndMerge(stage, dir, inputsHash);
      else result = await this.execute(stage, dir, null, record.provenance);
      if (result.interrupted) {
        record.status = "interrupted";
        this.saveManifest();
        this.log.warn(`stage '${stage.id}' interrupted; committed records are kept and the next run resumes`);
        return false;
      }
      Object.assign(record, { ...result, status: "done", finishedAt: new Date().toISOString(), durationMs: Math.round(performance.now() - t0) });
      this.saveManifest();
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
    for (const [slot, kind] of Object.entries(stage.plugin.produces)) {
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
      writeFile: async (name, data) => {
        const p = join(dir, name);
        atomicWriteFile(p, data);
        const entry = { file: name, sha256: await sha256File(p), bytes: statSync(p).size };
        const i = files.findIndex((f) => f.file === name);
        if (i >= 0) files[i] = entry;
        else files.push(entry);
        return p;
      },
      readManifest: async (runDir) => readJsonIfExists<RunManifestLike>(manifestPath(runDir)),
    };
    try {
      await stage.plugin.run(ctx);
    } finally {
      progress.close();
    }
    if (this.signal.aborted) {
      for (const w of writers) w.commit();
      return { artifacts: [], gates, files, interrupted: true };
    }
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

  private async runShardsAndMerge(stage: PlannedStage, dir: string, inputsHash: string) {
    const n = stage.spec.shards;
    if (stage.spec.shardMode === "process") {
      const children = Array.from({ length: n }, (_, i) =>
        Bun.spawn(["bun", join(import.meta.dir, "cli.ts"), "run", this.loaded.path, "--run-dir", this.runDir, "--only", stage.id, "--shard", `${i}/${n}`], { stdout: "inherit", stderr: "inherit", env: process.env }),
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
    const gates: GateResult[] = [];
    const artifacts: ArtifactInfo[] = [];
    for (const [slot, kind] of Object.entries(stage.plugin.produces)) {
      const out = new ArtifactWriter(join(dir, artifactFileName(slot, kind)), slot, kind, `${this.manifest.name}/${stage.id}`);
      for (let i = 0; i < n; i++) {
        const shardDir = this.shardDir(dir, i, n);
        for await (const rec of new ArtifactReader(join(shardDir, artifactFileName(slot, kind)), kind)) out.write(rec);
        out.commit();
      }
      artifacts.push(await out.finalize());
    }
    for (let i = 0; i < n; i++) {
      const marker = readJsonIfExists<{ gates: GateResult[] }>(join(this.shardDir(dir, i, n), "shard.json"));
      for (const g of marker?.gates ?? []) gates.push({ ...g, name: `${g.name}#${i}` });
    }
    return { artifacts, gates, files: [], interrupted: false };
  }
}
