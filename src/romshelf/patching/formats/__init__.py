"""One module per patch format; each exposes ``apply(rom, patch, out, max_bytes) -> PatchResult``."""
