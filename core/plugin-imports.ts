// How a user plugin's `import ... from "selftune"` (and "zod") resolves wherever the plugin
// lives: in this checkout, beside it, in another project, in /tmp with no node_modules near.
//
// Inside the checkout Bun resolves "selftune" by package self-reference (package.json
// `exports`). Anywhere else there may be no node_modules/selftune at all, and a different
// copy where there is one. So for the directory of every plugin module loaded from outside
// the checkout, an onLoad hook rewrites the specifiers `selftune[/sub]` and `zod[/sub]` in
// its import statements to the files this running selftune resolves them to: the plugin gets
// the contract it runs under and the zod its schemas are validated with, and nothing is
// looked up (or installed) beside it. Its other imports resolve as usual from where it is.
//
// A hook rather than Bun.plugin's onResolve: in Bun 1.4 a runtime onResolve does not fire for
// a bare specifier (oven-sh/bun#40579); onLoad does.
import { existsSync, realpathSync } from "node:fs";
import { dirname } from "node:path";
import { PROJECT_ROOT } from "./provenance.ts";

/** Specifiers the hook answers: the public API (and subpaths) and zod (and subpaths). */
const HOST_SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])((?:selftune|zod)(?:\/[^"'\s]*)?)\2/g;
const hooked = new Set<string>();

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** The file this checkout resolves `spec` to; the original text when it has none (Bun then reports it). */
function hostPath(spec: string): string {
  try {
    return Bun.resolveSync(spec, PROJECT_ROOT);
  } catch {
    return spec;
  }
}

/** Rewrite the host specifiers of one module's source (exported for tests). */
export function rewriteHostImports(source: string): string {
  return source.replace(HOST_SPECIFIER, (_m, pre: string, quote: string, spec: string) => `${pre}${quote}${hostPath(spec)}${quote}`);
}

/** Make "selftune" and "zod" resolve to this checkout for the plugin module at `modulePath` and the modules beside it. */
export function hostImportsFor(modulePath: string): void {
  const root = realpathSync(PROJECT_ROOT);
  const file = existsSync(modulePath) ? realpathSync(modulePath) : modulePath;
  if (file.startsWith(`${root}/`) && !file.slice(root.length).includes("/node_modules/")) return; // self-reference works here
  const dir = dirname(file);
  if (hooked.has(dir)) return;
  hooked.add(dir);
  // Every script under the plugin's folder, except what its own node_modules hold.
  const filter = new RegExp(`^${escapeRegExp(dir)}/(?:(?!node_modules/)[^])*\\.(?:[cm]?[jt]sx?)$`);
  Bun.plugin({
    name: `selftune host imports: ${dir}`,
    setup(build) {
      build.onLoad({ filter }, async ({ path }) => {
        const loader = path.endsWith(".tsx") ? "tsx" : path.endsWith(".jsx") ? "jsx" : /\.[cm]?js$/.test(path) ? "js" : "ts";
        return { contents: rewriteHostImports(await Bun.file(path).text()), loader };
      });
    },
  });
}
