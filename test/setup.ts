// Test preload. End-to-end tests spawn child processes and load models: allow them
// minutes, not bun's default 5 s (bunfig's [test] timeout is ignored by bun 1.4).
import { setDefaultTimeout } from "bun:test";
setDefaultTimeout(300_000);
// In-process stages report no progress (tests that spawn the CLI set their own mode).
process.env.SELFTUNE_PROGRESS ??= "off";
