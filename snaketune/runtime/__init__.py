"""Layer 6, how work runs: the warm worker (`worker`), the registered calls it may run
(`calls`), trials per job (`batching`)."""
