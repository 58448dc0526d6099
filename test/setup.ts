// Test preload: in-process stages report no progress (tests that spawn the CLI set their own mode).
process.env.SELFTUNE_PROGRESS ??= "off";
