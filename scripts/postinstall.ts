// Placeholder until the native build lands: fetches nothing yet.
