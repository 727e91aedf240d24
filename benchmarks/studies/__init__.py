"""One-off studies (not CI tests): scripts that may need extra, benchmark-only packages such as torch."""
