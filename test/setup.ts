// Test preload: keep tests quiet and deterministic.
process.env.SELFTUNE_PROGRESS ??= "json-off";
