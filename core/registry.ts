// Finds plugins: built-ins live in plugins/<name>/index.ts (found by convention,
// so core imports no plugin); user plugins are named by path or package name.
import { existsSync, readdirSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { isPlugin, type AnyPlugin } from "./plugin.ts";
import { hostImportsFor } from "./plugin-imports.ts";
import { PROJECT_ROOT } from "./provenance.ts";

const BUILTIN_DIR = join(PROJECT_ROOT, "plugins");

export interface LoadedPlugin {
  plugin: AnyPlugin;
  /** "builtin" or the resolved module path. */
  source: string;
}

export function builtinNames(): string[] {
  if (!existsSync(BUILTIN_DIR)) return [];
  return readdirSync(BUILTIN_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(BUILTIN_DIR, d.name, "index.ts")))
    .map((d) => d.name)
    .sort();
}

/** Resolve a plugin reference: built-in name, ./relative or /absolute path, or package name. */
export async function loadPlugin(ref: string, baseDir: string): Promise<LoadedPlugin> {
  let modulePath: string;
  let source: string;
  const builtin = join(BUILTIN_DIR, ref, "index.ts");
  if (/^[a-z][a-z0-9-]*$/.test(ref) && existsSync(builtin)) {
    modulePath = builtin;
    source = "builtin";
  } else if (ref.startsWith(".") || isAbsolute(ref)) {
    modulePath = resolve(baseDir, ref);
    if (!existsSync(modulePath)) throw new Error(`plugin module not found: ${modulePath}`);
    source = modulePath;
  } else {
    try {
      modulePath = Bun.resolveSync(ref, baseDir);
    } catch {
      throw new Error(`unknown plugin '${ref}': not a built-in (${builtinNames().join(", ") || "none"}), not a path, not an installed package`);
    }
    source = modulePath;
  }
  // A user plugin's "selftune" and "zod" are this checkout's, wherever it lives (plugin-imports.ts).
  if (source !== "builtin") hostImportsFor(modulePath);
  const mod = (await import(modulePath)) as { default?: unknown; plugin?: unknown };
  const plugin = mod.default ?? mod.plugin;
  if (!isPlugin(plugin)) throw new Error(`${modulePath}: does not export a plugin (export default definePlugin({...}))`);
  return { plugin, source };
}
